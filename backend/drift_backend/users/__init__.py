"""Registered users: the token's subject and issuer, stored once."""
