"""Assemble everything the router can reach. New features add their flows here."""

from __future__ import annotations

from dialogs import (
    apply_driver,
    apply_lawyer,
    onboarding,
    ride_jobs,
    ride_request,
    role_applications,
    settings_flows,
)
from handlers import commands, rides_driver
from handlers.registry import Registry
from scheduler import housekeeping
from scheduler.jobs import Jobs


def build_registry() -> Registry:
    registry = Registry()
    for flow in (
        onboarding.FLOW,
        settings_flows.LANGUAGE,
        settings_flows.FORGET,
        apply_driver.FLOW,
        apply_lawyer.FLOW,
    ):
        registry.add_flow(flow)
    commands.register(registry)
    ride_request.register(registry)
    rides_driver.register(registry)
    return registry


def register_jobs(jobs: Jobs) -> None:
    role_applications.register_jobs(jobs)
    ride_jobs.register_jobs(jobs)
    housekeeping.register(jobs)
