// Raw-word test bench for an hls4ml io_parallel project (written by l1flow).
//
// Reads input words (one event per line, @N_IN@ signed decimal integers: the
// raw two's complement bits of @INPUT_T@) and writes the output words the
// same way, so C simulation and RTL co-simulation results are exact records
// (hls4ml's own bench prints 6 significant digits).
//
//   @TOP@_raw_test [inputs.txt [outputs.txt]]
//
// Defaults: tb_data/raw_inputs.txt and tb_data/raw_outputs.txt (the tb_data
// folder is copied next to the simulation by the HLS project).
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "firmware/@PROJECT@.h"
#include "firmware/nnet_utils/nnet_helpers.h"

namespace nnet {
bool trace_enabled = false;
std::map<std::string, void *> *trace_outputs = NULL;
size_t trace_type_size = sizeof(double);
} // namespace nnet

static const int N_IN = @N_IN@;
static const int N_OUT = @N_OUT@;
static const bool OUT_SIGNED = @OUT_SIGNED@;

template <class T> static void set_word(T &x, long long word) {
    x.range(T::width - 1, 0) = (unsigned long long)word;
}

template <class T> static long long get_word(const T &x, bool is_signed) {
    unsigned long long bits = x.range(T::width - 1, 0).to_uint64();
    if (is_signed && T::width < 64 && ((bits >> (T::width - 1)) & 1ULL))
        bits |= ~0ULL << T::width;
    return (long long)bits;
}

int main(int argc, char **argv) {
    const char *in_path = argc > 1 ? argv[1] : "tb_data/raw_inputs.txt";
    const char *out_path = argc > 2 ? argv[2] : "tb_data/raw_outputs.txt";
    std::ifstream fin(in_path);
    if (!fin.is_open()) {
        std::cerr << "ERROR: cannot open input words " << in_path << std::endl;
        return 1;
    }
    std::ofstream fout(out_path);
    if (!fout.is_open()) {
        std::cerr << "ERROR: cannot write output words " << out_path << std::endl;
        return 1;
    }
    std::string line;
    long events = 0;
    while (std::getline(fin, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos)
            continue;
        std::istringstream row(line);
        @INPUT_T@ input[N_IN];
        @OUTPUT_T@ output[N_OUT];
        for (int i = 0; i < N_IN; i++) {
            long long word;
            if (!(row >> word)) {
                std::cerr << "ERROR: " << in_path << " line " << events + 1 << ": expected " << N_IN
                          << " integer words, found " << i << std::endl;
                return 2;
            }
            set_word(input[i], word);
        }
        @TOP@(input, output);
        for (int j = 0; j < N_OUT; j++)
            fout << (j ? " " : "") << get_word(output[j], OUT_SIGNED);
        fout << "\n";
        events++;
    }
    std::cout << "l1flow raw test bench: " << events << " events written to " << out_path << std::endl;
    return 0;
}
