"""The preview guard, a Pulumi policy pack: see __main__.py and guard.py."""
