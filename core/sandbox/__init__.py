"""Local servers that imitate Yunite, the Fortnite stats API and a Banano node.

Each is an aiohttp application listening on a loopback address only, with methods to set its
state and inject faults. Tests and the `pay2slay sandbox` command start them on free ports.
"""
