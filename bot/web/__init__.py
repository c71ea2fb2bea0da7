"""The side web server (aiohttp): the Discord OAuth sign-in, and the routes others add to it.

Nothing here imports discord.py, so the server can run and be tested without a Discord client.
"""
