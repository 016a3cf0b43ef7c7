"""Assemble everything the router can reach. New features add their flows here."""

from __future__ import annotations

from dialogs import apply_driver, apply_lawyer, onboarding, settings_flows
from handlers import commands
from handlers.registry import Registry


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
    return registry
