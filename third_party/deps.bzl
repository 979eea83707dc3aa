"""baton_deps(): the repositories baton needs, all offline.

Bazel 4 (Debian's bazel-bootstrap) fetches rules_cc, rules_java and
remote_coverage_tools from the network even for a pure C++ build. This file
declares small local stand-ins for them, and `platforms` from Debian's
bazel-platforms package, so a build never leaves the machine.

A consumer writes:

    local_repository(name = "baton", path = "/path/to/baton")
    load("@baton//third_party:deps.bzl", "baton_deps")
    baton_deps()

Repositories the consumer already defines are left untouched.
"""

_RULES_CC_DEFS = """\
\"\"\"Offline stand-in for rules_cc: re-exports Bazel's native C++ rules.\"\"\"

def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_import(**kwargs):
    native.cc_import(**kwargs)

def cc_proto_library(**kwargs):
    native.cc_proto_library(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

def objc_library(**kwargs):
    native.objc_library(**kwargs)
"""

_RULES_CC_BUILD = """\
package(default_visibility = ["//visibility:public"])

alias(
    name = "toolchain_type",
    actual = "@bazel_tools//tools/cpp:toolchain_type",
)
"""

_RULES_JAVA_DEFS = """\
\"\"\"Offline stand-in for rules_java: re-exports Bazel's native Java rules.\"\"\"

def java_binary(**kwargs):
    native.java_binary(**kwargs)

def java_import(**kwargs):
    native.java_import(**kwargs)

def java_library(**kwargs):
    native.java_library(**kwargs)

def java_plugin(**kwargs):
    native.java_plugin(**kwargs)

def java_test(**kwargs):
    native.java_test(**kwargs)

def java_toolchain(**kwargs):
    native.java_toolchain(**kwargs)

def java_runtime(**kwargs):
    native.java_runtime(**kwargs)
"""

_COVERAGE_BUILD = """\
package(default_visibility = ["//visibility:public"])

# Offline stand-ins: baton does not collect coverage through Bazel, but
# `bazel test` in Bazel 4 resolves these labels for every test.
sh_binary(
    name = "coverage_report_generator",
    srcs = ["unavailable.sh"],
)

sh_binary(
    name = "lcov_merger",
    srcs = ["unavailable.sh"],
)

filegroup(
    name = "coverage_output_generator",
    srcs = ["unavailable.sh"],
)
"""

_COVERAGE_SH = """\
#!/bin/sh
echo "coverage tools are not available in this offline build" >&2
exit 1
"""

def _offline_stub_impl(repository_ctx):
    kind = repository_ctx.attr.kind
    repository_ctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % repository_ctx.name)
    if kind == "rules_cc":
        repository_ctx.file("BUILD", "")
        repository_ctx.file("cc/BUILD", _RULES_CC_BUILD)
        repository_ctx.file("cc/defs.bzl", _RULES_CC_DEFS)
    elif kind == "rules_java":
        repository_ctx.file("BUILD", "")
        repository_ctx.file("java/BUILD", "")
        repository_ctx.file("java/defs.bzl", _RULES_JAVA_DEFS)
    elif kind == "remote_coverage_tools":
        repository_ctx.file("BUILD", _COVERAGE_BUILD)
        repository_ctx.file("unavailable.sh", _COVERAGE_SH, executable = True)
    else:
        fail("unknown offline stub kind: " + kind)

_offline_stub = repository_rule(
    implementation = _offline_stub_impl,
    attrs = {"kind": attr.string(mandatory = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

def baton_deps():
    """Declares every repository baton needs, skipping ones already defined."""
    _maybe(_offline_stub, "rules_cc", kind = "rules_cc")
    _maybe(_offline_stub, "rules_java", kind = "rules_java")
    _maybe(_offline_stub, "remote_coverage_tools", kind = "remote_coverage_tools")
    _maybe(
        native.local_repository,
        "platforms",
        path = "/usr/share/bazel/tools/platforms",
    )
