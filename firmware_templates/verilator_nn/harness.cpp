// Stream test vectors through a Verilated da4ml netlist.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads>
//
// inputs.bin holds int64 raw fixed-point words, N_IN per event (row major);
// outputs.bin receives int64 words, N_OUT per event. Events are split into
// contiguous blocks, one Verilated model per thread, so no Python runs per
// event. harness_config.h (generated per design) says where every word sits
// in the packed model_inp / model_out buses and whether the top is clocked.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "verilated.h"
#include "harness_config.h"

namespace {

constexpr int IN_CHUNKS = (IN_BITS + 31) / 32;
constexpr int OUT_CHUNKS = (OUT_BITS + 31) / 32;

// Place `width` low bits of `word` at bit `offset` of a little-endian chunk array.
inline void put_bits(uint32_t *chunks, int offset, int width, int64_t word) {
    uint64_t bits = static_cast<uint64_t>(word);
    for (int done = 0; done < width;) {
        int pos = offset + done;
        int take = 32 - pos % 32;
        if (take > width - done) take = width - done;
        uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
        uint32_t piece = static_cast<uint32_t>(bits >> done) & mask;
        chunks[pos / 32] |= piece << (pos % 32);
        done += take;
    }
}

inline uint64_t get_bits(const uint32_t *chunks, int offset, int width) {
    uint64_t bits = 0;
    for (int done = 0; done < width;) {
        int pos = offset + done;
        int take = 32 - pos % 32;
        if (take > width - done) take = width - done;
        uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
        uint64_t piece = (chunks[pos / 32] >> (pos % 32)) & mask;
        bits |= piece << done;
        done += take;
    }
    return bits;
}

// Verilator holds buses up to 64 bits as integers and wider ones as VlWide.
template <typename T>
std::enable_if_t<std::is_integral_v<T>> load_bus(T &bus, const uint32_t *chunks) {
    uint64_t v = chunks[0];
    if constexpr (sizeof(T) > 4) {
        if (IN_CHUNKS > 1) v |= static_cast<uint64_t>(chunks[1]) << 32;
    }
    bus = static_cast<T>(v);
}

template <std::size_t N>
void load_bus(VlWide<N> &bus, const uint32_t *chunks) {
    for (std::size_t i = 0; i < N; ++i) bus[i] = chunks[i];
}

template <typename T>
std::enable_if_t<std::is_integral_v<T>> store_bus(const T &bus, uint32_t *chunks) {
    uint64_t v = static_cast<uint64_t>(bus);
    chunks[0] = static_cast<uint32_t>(v);
    if constexpr (sizeof(T) > 4) {
        if (OUT_CHUNKS > 1) chunks[1] = static_cast<uint32_t>(v >> 32);
    }
}

template <std::size_t N>
void store_bus(const VlWide<N> &bus, uint32_t *chunks) {
    for (std::size_t i = 0; i < N; ++i) chunks[i] = bus[i];
}

inline void pack_event(const int64_t *words, uint32_t *chunks) {
    for (int c = 0; c < IN_CHUNKS; ++c) chunks[c] = 0;
    for (int i = 0; i < N_IN; ++i) {
        if (IN_WIDTH[i] == 0) continue;
        put_bits(chunks, IN_OFFSET[i], IN_WIDTH[i], words[i]);
    }
}

inline void unpack_event(const uint32_t *chunks, int64_t *words) {
    for (int i = 0; i < N_OUT; ++i) {
        int w = OUT_WIDTH[i];
        if (w == 0) {
            words[i] = 0;
            continue;
        }
        uint64_t bits = get_bits(chunks, OUT_OFFSET[i], w);
        int64_t value;
        if (OUT_SIGNED[i] && w < 64 && ((bits >> (w - 1)) & 1u)) {
            value = static_cast<int64_t>(bits | (~uint64_t(0) << w));
        } else {
            value = static_cast<int64_t>(bits);
        }
        // The RTL output's LSB may sit above the firmware type's LSB.
        words[i] = static_cast<int64_t>(static_cast<uint64_t>(value) << OUT_SHIFT[i]);
    }
}

void simulate_block(const int64_t *in, int64_t *out, std::size_t events) {
    VerilatedContext context;
    auto dut = std::make_unique<TOP_CLASS>(&context);
    uint32_t in_chunks[IN_CHUNKS > 0 ? IN_CHUNKS : 1];
    uint32_t out_chunks[OUT_CHUNKS > 0 ? OUT_CHUNKS : 1];
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
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 5) {
        std::fprintf(stderr, "usage: %s <inputs.bin> <outputs.bin> <events> <threads>\n", argv[0]);
        return 2;
    }
    std::size_t events = std::strtoull(argv[3], nullptr, 10);
    int threads = std::atoi(argv[4]);
    if (threads < 1) threads = 1;

    std::vector<int64_t> in(events * N_IN), out(events * N_OUT);
    FILE *fin = std::fopen(argv[1], "rb");
    if (!fin || std::fread(in.data(), sizeof(int64_t), in.size(), fin) != in.size()) {
        std::fprintf(stderr, "%s: cannot read %zu events of %d words\n", argv[1], events, N_IN);
        return 3;
    }
    std::fclose(fin);

    std::size_t per = (events + threads - 1) / threads;
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t) {
        std::size_t start = t * per;
        if (start >= events) break;
        std::size_t count = std::min(per, events - start);
        pool.emplace_back(simulate_block, in.data() + start * N_IN, out.data() + start * N_OUT, count);
    }
    for (auto &th : pool) th.join();

    FILE *fout = std::fopen(argv[2], "wb");
    if (!fout || std::fwrite(out.data(), sizeof(int64_t), out.size(), fout) != out.size()) {
        std::fprintf(stderr, "%s: cannot write outputs\n", argv[2]);
        return 4;
    }
    std::fclose(fout);
    return 0;
}
