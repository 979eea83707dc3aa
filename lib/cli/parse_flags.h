// Internal header (project binaries: servers and clients): command-line
// parsing with a --help that shows the program's own flags.
#ifndef BATON_CLI_PARSE_FLAGS_H_
#define BATON_CLI_PARSE_FLAGS_H_

#include <string>

namespace baton::cli {

// gflags::ParseCommandLineFlags(argc, argv, true), except for help:
// --help and --helpshort print the usage message (gflags::SetUsageMessage)
// and the program's own flags, those of the main file first, and exit 0;
// the flags gflags and glog define themselves (--flagfile, --v,
// --logtostderr, ...) are left out. --helpfull prints the same, then those
// library flags, and exits 0. Other help flags (--helpon, --helpmatch,
// --helpxml, --version) behave as in gflags.
void ParseFlags(int* argc, char*** argv);

// Sets the default (and, unless given, the value) of flag `name` for this
// binary, as --help shows it. Call before ParseFlags. Dies if `name` is not
// a flag or `value` is not valid for it.
void SetFlagDefault(const char* name, const std::string& value);

}  // namespace baton::cli

#endif  // BATON_CLI_PARSE_FLAGS_H_
