"""keep_freed_memory: glibc's malloc told to keep freed memory; a no-op elsewhere."""

from __future__ import annotations

import ctypes
import platform

import pytest

from s2s import allocator


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_settings():
    assert allocator.keep_freed_memory() is True


def test_a_c_library_without_mallopt_is_left_alone(monkeypatch):
    class NoMallopt:
        def __init__(self, name):
            pass

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert allocator.keep_freed_memory() is False


def test_refused_settings_are_reported(monkeypatch):
    class Refusing:
        def __init__(self, name):
            self.mallopt = lambda parameter, value: 0

    monkeypatch.setattr(ctypes, "CDLL", Refusing)
    assert allocator.keep_freed_memory() is False
