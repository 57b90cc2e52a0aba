"""Stack configs shared by the unit tests, in Pulumi's raw form (key -> string)."""

import json

HOSTILE_PASSWORD = "p@ss:w/rd?#%'\" x+&="

BASE = {
    "domain": "api.shop.example.com",
    "blueImage": "registry.example.com/shop/medusa:1.0.0",
    "jwtSecret": "j" * 40,
    "cookieSecret": "c" * 40,
    "postgresPassword": HOSTILE_PASSWORD,
    "redisPassword": HOSTILE_PASSWORD[::-1],
    "stripeApiKey": "sk_live_stripe_secret_value",
    "medusa": json.dumps({"storeCors": ["https://shop.example.com"], "env": {"FEATURE_X": "on"}}),
}


def config(**overrides: str) -> dict[str, str]:
    return {**BASE, "activeColor": "blue", **overrides}


def two_colors(active: str) -> dict[str, str]:
    return config(activeColor=active, greenImage="registry.example.com/shop/medusa:1.1.0")
