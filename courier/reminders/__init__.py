"""Automatic payment reminders (pure core).

* ``rules`` - the reminder rules file: loading, validation (every problem named by rule and
  field), the ``RuleSet`` the rest of Courier reads, and SMS previews of its templates.
* ``schedule`` - when a rule step falls due: month arithmetic and the seller's local clock.
"""
