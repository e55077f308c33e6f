from hypothesis import HealthCheck, settings

# CI machines are small and shared: no per-example deadlines; a moderate number of examples.
settings.register_profile(
    "default", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")
