"""Learning-rate schedules: the spec parses `recipe.schedule` once (`spec.schedule`); the
trial starts the parsed value (`start_schedule`). This module keeps the names training code
and tests have always imported."""

from orchestrator.spec.schedule import (
    BOUNDARY_MODES,
    PLATEAU_MODES,
    SCHEDULE_KINDS,
    ConstantSchedule,
    CosineSchedule,
    HTDSchedule,
    PlateauConfig,
    PlateauSchedule,
    Schedule,
    ScheduleValue,
    StepSchedule,
    WarmupSchedule,
    parse_schedule,
    schedule_from_dict,
    start_schedule,
)

__all__ = [
    "BOUNDARY_MODES",
    "PLATEAU_MODES",
    "SCHEDULE_KINDS",
    "ConstantSchedule",
    "CosineSchedule",
    "HTDSchedule",
    "PlateauConfig",
    "PlateauSchedule",
    "Schedule",
    "ScheduleValue",
    "StepSchedule",
    "WarmupSchedule",
    "parse_schedule",
    "schedule_from_dict",
    "start_schedule",
]
