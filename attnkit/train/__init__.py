"""Reusable Lightning glue for tasks: trainer set-up, schedules, reports. Imports Lightning: load it lazily."""
