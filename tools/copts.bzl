"""Compiler flags applied per target, so consumers need none of our .bazelrc."""

# The language standard is set here, not in .bazelrc: a consumer repo never
# reads our .bazelrc.
BATON_COPTS = [
    "-std=c++17",
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
    "-Wnon-virtual-dtor",
    "-Wshadow=local",
]

BATON_TEST_COPTS = BATON_COPTS + [
    "-Wno-sign-compare",
]
