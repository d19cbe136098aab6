"""The desk service: police warning desks and bank liaisons work warning tasks here.

It consumes ``warning-tasks`` into its own storage, serves web pages and a JSON API scoped by
role (``desk:<district>``, ``bank:<bank>``, ``ops``), writes an audit log, and publishes what
people did to ``task-outcomes``.
"""
