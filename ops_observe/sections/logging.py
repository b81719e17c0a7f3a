"""Settings of the JSON logging and the access log."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ops_observe.schema import non_empty, setting

Level = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]


@dataclass(frozen=True)
class LoggingSettings:
    """``[ops_observe.logging]``: JSON log lines, their sink and level."""

    level: Level = setting("INFO", doc="Lowest level written.")
    sink: str = setting("stdout", doc='"stdout", "stderr" or a file path.', check=non_empty)
