// Internal (project binaries): ParseFlags and its --help.
#include "lib/cli/parse_flags.h"

#include <gflags/gflags.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace baton::cli {
namespace {

using FlagInfo = gflags::CommandLineFlagInfo;

bool BoolFlagIsSet(const char* name) {
  std::string value;
  return gflags::GetCommandLineOption(name, &value) && value == "true";
}

absl::string_view Dirname(absl::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? absl::string_view()
                                          : path.substr(0, slash + 1);
}

// The directories of the files in which gflags and glog define their own
// flags, found through a flag each is known to define (the paths are those
// of Debian's builds, e.g. "/build/gflags-.../src/" and "./src/").
std::vector<std::string> LibraryDirs() {
  std::vector<std::string> dirs;
  for (const char* known : {"flagfile", "logtostderr"}) {
    FlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(known, &info)) continue;
    const absl::string_view dir = Dirname(info.filename);
    if (!dir.empty()) dirs.emplace_back(dir);
  }
  return dirs;
}

bool IsLibraryFlag(const FlagInfo& flag, const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    if (absl::StartsWith(flag.filename, dir)) return true;
  }
  return false;
}

// The file holding main(), as gflags' --helpshort finds it: "<program>.cc",
// "<program>_main.cc" or "<program>-main.cc".
bool IsMainFile(absl::string_view filename, absl::string_view program) {
  absl::string_view base = filename.substr(filename.rfind('/') + 1);
  base = base.substr(0, base.find('.'));
  return base == program || base == absl::StrCat(program, "_main") ||
         base == absl::StrCat(program, "-main");
}

// Prints "  Flags from FILE:" before each file's flags, as gflags does.
void PrintFlags(const std::vector<const FlagInfo*>& flags) {
  const std::string* file = nullptr;
  for (const FlagInfo* flag : flags) {
    if (file == nullptr || *file != flag->filename) {
      file = &flag->filename;
      std::printf("\n  Flags from %s:\n", file->c_str());
    }
    std::fputs(gflags::DescribeOneFlag(*flag).c_str(), stdout);
  }
}

[[noreturn]] void PrintHelpAndExit(bool full) {
  std::vector<FlagInfo> all;
  gflags::GetAllFlags(&all);  // sorted by file, then by name
  const std::vector<std::string> dirs = LibraryDirs();
  const absl::string_view program = gflags::ProgramInvocationShortName();
  std::vector<const FlagInfo*> main_file, other_files, library;
  for (const FlagInfo& flag : all) {
    if (IsLibraryFlag(flag, dirs)) {
      library.push_back(&flag);
    } else if (IsMainFile(flag.filename, program)) {
      main_file.push_back(&flag);
    } else {
      other_files.push_back(&flag);
    }
  }
  std::printf("%s: %s\n", gflags::ProgramInvocationShortName(),
              gflags::ProgramUsage());
  PrintFlags(main_file);
  PrintFlags(other_files);
  if (full) {
    std::printf("\nFlags of gflags and glog:\n");
    PrintFlags(library);
  } else {
    std::printf(
        "\n--helpfull also lists the flags gflags and glog define\n"
        "(--flagfile, --v, --logtostderr, ...).\n");
  }
  std::fflush(stdout);
  std::exit(0);
}

}  // namespace

void ParseFlags(int* argc, char*** argv) {
  gflags::ParseCommandLineNonHelpFlags(argc, argv, /*remove_flags=*/true);
  const bool full = BoolFlagIsSet("helpfull");
  if (full || BoolFlagIsSet("help") || BoolFlagIsSet("helpshort")) {
    PrintHelpAndExit(full);
  }
  gflags::HandleCommandLineHelpFlags();  // --helpon, --version, ...
}

void SetFlagDefault(const char* name, const std::string& value) {
  if (gflags::SetCommandLineOptionWithMode(name, value.c_str(),
                                           gflags::SET_FLAGS_DEFAULT)
          .empty()) {
    std::fprintf(stderr, "SetFlagDefault: cannot set --%s to '%s'\n", name,
                 value.c_str());
    std::abort();
  }
}

}  // namespace baton::cli
