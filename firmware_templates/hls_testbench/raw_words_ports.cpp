// Raw-word test bench for any io_parallel hls4ml or conifer top function (written by l1flow).
//
//   bench <inputs.bin> <outputs.bin> <events>
//
// inputs.bin holds @N_IN@ int64 words per event (every input argument's
// elements in argument order), outputs.bin receives @N_OUT@ per event; each
// word is the raw two's complement bits of its argument's type. The argument
// declarations and copies are generated from the top function's signature by
// l1flow.verify.reference.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "firmware/@TOP@.h"

// the top function as firmware/@TOP@.cpp defines it (conifer's header declares another overload)
@PROTOTYPE@

namespace nnet {
// hls4ml's nnet_helpers.h declares these for tracing; conifer's firmware ignores them.
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
}  // namespace nnet

template <class T> static void set_word(T &x, long long word) { x.range(T::width - 1, 0) = (unsigned long long)word; }

template <class T> static long long get_word(const T &x, bool is_signed) {
    unsigned long long bits = x.range(T::width - 1, 0).to_uint64();
    if (is_signed && T::width < 64 && ((bits >> (T::width - 1)) & 1ULL)) bits |= ~0ULL << T::width;
    return (long long)bits;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s <inputs.bin> <outputs.bin> <events>\n", argv[0]);
        return 2;
    }
    long events = std::atol(argv[3]);
    std::FILE *fin = std::fopen(argv[1], "rb");
    std::FILE *fout = std::fopen(argv[2], "wb");
    if (!fin || !fout) {
        std::fprintf(stderr, "cannot open %s or %s\n", argv[1], argv[2]);
        return 3;
    }
    std::vector<long long> in(@N_IN@), out(@N_OUT@);
@DECLARE@
    for (long e = 0; e < events; e++) {
        if (std::fread(in.data(), sizeof(long long), in.size(), fin) != in.size()) {
            std::fprintf(stderr, "%s: ends at event %ld of %ld\n", argv[1], e, events);
            return 4;
        }
@LOAD@
        @TOP@(@ARGS@);
@STORE@
        if (std::fwrite(out.data(), sizeof(long long), out.size(), fout) != out.size()) {
            std::fprintf(stderr, "%s: cannot write event %ld\n", argv[2], e);
            return 4;
        }
    }
    std::fclose(fin);
    return std::fclose(fout) == 0 ? 0 : 4;
}
