"""The flow engine: flow files, their validation, and `step()`. Pure: no web, database or Twilio."""

from service.flowengine.engine import start, step
from service.flowengine.loader import FlowError, Problem
from service.flowengine.model import Flow
from service.flowengine.position import Position
from service.flowengine.validate import check_paths, load_flow

__all__ = ["Flow", "FlowError", "Position", "Problem", "check_paths", "load_flow", "start", "step"]
