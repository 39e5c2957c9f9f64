"""Analyses beyond a run's metrics, built on its results and raw data: how a method ranks degraded copies against
their source photos (:mod:`.sensitivity`) and per-group metrics (:mod:`.groups`)."""
