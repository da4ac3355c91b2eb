"""Instances of status models and the way of an event through them, one sub-package a stage:

``arrival`` (API, files, Kinesis) -> ``inbox`` (dispatch to workers, sweep, expiry) ->
``apply`` (the engine under row locks) -> ``progress`` (what API readers and customers see);
``operations`` holds what operators do by hand. docs/architecture.md has the map."""
