// Stream test vectors through a Verilated da4ml netlist.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads>
//
// The word files and threads are word_stream.h's; this file moves one
// event's words in and out of the model. harness_config.h (generated per
// design) says where every word sits in the packed model_inp / model_out
// buses and whether the top is clocked.
//
// Latency convention: an event is applied before clock edge t and its result
// is read after edge t + LATENCY (0 for a combinational top). Before the
// events stream, probe_latency measures that number on the design itself and
// the library compares it with the generator's LATENCY.
#include <algorithm>
#include <cstdint>
#include <cstring>
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

#if CLOCKED
inline void tick(TOP_CLASS &dut) {
    dut.clk = 0;
    dut.eval();
    dut.clk = 1;
    dut.eval();
}
#endif

// Longest latency the probe can see, and how many events it tries to find two that differ.
constexpr int kProbeCycles = 1024;
constexpr std::size_t kProbeEvents = 64;

// Hold event `e` on the input for kProbeCycles clocks (a settled pipeline); return the output chunks.
inline void settle(TOP_CLASS &dut, const int64_t *in, std::size_t e, uint32_t *out_chunks) {
    uint32_t in_chunks[IN_CHUNKS + kPadChunks];
    pack_event(in + e * N_IN, in_chunks);
    load_bus(dut.model_inp, in_chunks);
    dut.eval();
#if CLOCKED
    for (int c = 0; c < kProbeCycles; ++c) tick(dut);
#endif
    store_bus(dut.model_out, out_chunks);
}

// Settle on event 0, switch to the first event whose settled output differs, and
// count the clock edges until that output appears (one pipeline holds one event per stage).
int probe_latency(const int64_t *in, std::size_t events) {
    VerilatedContext context;
    auto dut = std::make_unique<TOP_CLASS>(&context);
    constexpr std::size_t bytes = sizeof(uint32_t) * (OUT_CHUNKS + kPadChunks);
    uint32_t first[OUT_CHUNKS + kPadChunks] = {}, other[OUT_CHUNKS + kPadChunks] = {};
    uint32_t now[OUT_CHUNKS + kPadChunks] = {};
    settle(*dut, in, 0, first);
    std::size_t changed = 0;
    for (std::size_t e = 1; e < std::min(events, kProbeEvents) && changed == 0; ++e) {
        settle(*dut, in, e, other);
        if (std::memcmp(first, other, bytes) != 0) changed = e;
    }
    if (changed == 0) return word_stream::kLatencyUnobservable;
    settle(*dut, in, 0, now);
    uint32_t in_chunks[IN_CHUNKS + kPadChunks];
    pack_event(in + changed * N_IN, in_chunks);
    load_bus(dut->model_inp, in_chunks);
#if CLOCKED
    for (int edge = 0; edge < kProbeCycles; ++edge) {
        tick(*dut);
        store_bus(dut->model_out, now);
        if (std::memcmp(now, other, bytes) == 0) return edge;
    }
    return word_stream::kLatencyUnsettled;
#else
    dut->eval();
    store_bus(dut->model_out, now);
    return std::memcmp(now, other, bytes) == 0 ? 0 : word_stream::kLatencyUnsettled;
#endif
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
        tick(*dut);
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

int main(int argc, char **argv) {
    return word_stream::run(argc, argv, N_IN, N_OUT, simulate_block, probe_latency);
}
