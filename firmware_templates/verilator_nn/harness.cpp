// Stream test vectors through a Verilated da4ml netlist.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads>
//
// The word files and threads are word_stream.h's; this file moves one
// event's words in and out of the model. harness_config.h (generated per
// design) says where every word sits in the packed model_inp / model_out
// buses and whether the top is clocked.
#include <cstdint>
#include <memory>

#include "verilated.h"
#include "harness_config.h"
#include "word_stream.h"

namespace {

using word_stream::get_bits;
using word_stream::kPadChunks;
using word_stream::load_bus;
using word_stream::put_bits;
using word_stream::store_bus;

constexpr int IN_CHUNKS = (IN_BITS + 31) / 32;
constexpr int OUT_CHUNKS = (OUT_BITS + 31) / 32;

inline void pack_event(const int64_t *words, uint32_t *chunks) {
    for (int c = 0; c < IN_CHUNKS + kPadChunks; ++c) chunks[c] = 0;
    for (int i = 0; i < N_IN; ++i) {
        if (IN_WIDTH[i] == 0) continue;
        put_bits(chunks, IN_OFFSET[i], IN_WIDTH[i], words[i]);
    }
}

inline void unpack_event(const uint32_t *chunks, int64_t *words) {
    for (int i = 0; i < N_OUT; ++i) {
        int w = OUT_WIDTH[i];
        int64_t value = w == 0 ? 0 : get_bits(chunks, OUT_OFFSET[i], w, OUT_SIGNED[i]);
        // The RTL output's LSB may sit above the firmware type's LSB.
        words[i] = static_cast<int64_t>(static_cast<uint64_t>(value) << OUT_SHIFT[i]);
    }
}

int simulate_block(const int64_t *in, int64_t *out, std::size_t events) {
    VerilatedContext context;
    auto dut = std::make_unique<TOP_CLASS>(&context);
    uint32_t in_chunks[IN_CHUNKS + kPadChunks];
    uint32_t out_chunks[OUT_CHUNKS + kPadChunks] = {};
#if CLOCKED
    // II = 1: one event per clock; event e leaves LATENCY clocks after it entered.
    std::size_t cycles = events + LATENCY;
    for (std::size_t t = 0; t < cycles; ++t) {
        if (t < events) {
            pack_event(in + t * N_IN, in_chunks);
            load_bus(dut->model_inp, in_chunks);
        }
        dut->clk = 0;
        dut->eval();
        dut->clk = 1;
        dut->eval();
        if (t >= static_cast<std::size_t>(LATENCY)) {
            store_bus(dut->model_out, out_chunks);
            unpack_event(out_chunks, out + (t - LATENCY) * N_OUT);
        }
    }
#else
    for (std::size_t e = 0; e < events; ++e) {
        pack_event(in + e * N_IN, in_chunks);
        load_bus(dut->model_inp, in_chunks);
        dut->eval();
        store_bus(dut->model_out, out_chunks);
        unpack_event(out_chunks, out + e * N_OUT);
    }
#endif
    dut->final();
    return 0;
}

}  // namespace

int main(int argc, char **argv) { return word_stream::run(argc, argv, N_IN, N_OUT, simulate_block); }
