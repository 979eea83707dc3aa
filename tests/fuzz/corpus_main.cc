// Replays a fuzz corpus through LLVMFuzzerTestOneInput without libFuzzer, so
// the normal suite (gcc, plain/asan/tsan) runs every seed input:
//   http_request_corpus_test DIR
// Exits non-zero if DIR has no inputs; an input that breaks an invariant
// traps.
#include <dirent.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv);
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  std::vector<std::string> files;
  if (DIR* dir = ::opendir(argv[1])) {
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.')
        files.push_back(std::string(argv[1]) + "/" + e->d_name);
    }
    ::closedir(dir);
  }
  if (files.empty()) {
    std::fprintf(stderr, "no inputs in %s\n", argv[1]);
    return 1;
  }
  LLVMFuzzerInitialize(&argc, &argv);
  for (const std::string& file : files) {
    std::ifstream in(file, std::ios::binary);
    std::stringstream bytes;
    bytes << in.rdbuf();
    const std::string input = bytes.str();
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(input.data()),
                           input.size());
  }
  std::printf("replayed %zu inputs from %s\n", files.size(), argv[1]);
  return 0;
}
