"""Scheduling: occurrences of agreed cadences, the sweep that fires reminders,
overdue flags and due reviews, delivery of notifications, calendars.

A schedule is partnership data (:class:`mspflow.store.models.Schedule`); no
APScheduler job store is shared between processes. APScheduler computes the
occurrences (:mod:`.times`) and, in the daemon, runs the sweep at an interval.
"""
