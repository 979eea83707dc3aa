// //server:echo — the echo server on baton's leader/followers reactor.
//
//   bazel run //server:echo -- --port=12345 --threads=2
//
// Logs "listening on ADDR:PORT" once ready; SIGINT or SIGTERM stop it
// gracefully (listeners close, connections close, threads join) and it exits
// 0 after logging the reactor's counters. Its flags are in echo_main.cc.
#include "server/echo_main.h"

int main(int argc, char** argv) { return baton::EchoMain(argc, argv, {}); }
