"""Test support code: helpers and fixtures shared by several test packages."""
