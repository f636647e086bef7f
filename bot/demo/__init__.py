"""The simulated fleet behind ``nightshift demo`` (see :mod:`bot.demo.run`)."""

from bot.demo.run import run_demo

__all__ = ["run_demo"]
