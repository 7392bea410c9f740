// Drive a Vitis/Vivado HLS top level (ap_ctrl_hs handshake, ap_vld ports)
// with test vectors and collect its outputs, no Python per event.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads>
//
// inputs.bin holds int64 raw words, N_IN per event; outputs.bin receives
// N_OUT words per event. The port-specific code (which bits of which
// Verilog port carry which word, which ports have ap_vld) is generated into
// harness_ports.h from the top module's port list by l1flow.hardware.hls_verilog.
//
// Each clock: inputs of the next event are presented with ap_start and the
// input ap_vld high (the last event repeats until every output is out); before the rising edge the handshake is sampled (an
// event is taken when ap_ready is high; an output word is captured when its
// ap_vld, or ap_done for ports without one, is high), then the edge is applied.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <type_traits>
#include <vector>

#include "verilated.h"
#include "Vtop.h"

namespace {

inline void put_bits(uint32_t *chunks, int offset, int width, int64_t word) {
    uint64_t bits = static_cast<uint64_t>(word);
    for (int done = 0; done < width;) {
        int pos = offset + done;
        int take = 32 - pos % 32;
        if (take > width - done) take = width - done;
        uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
        chunks[pos / 32] |= (static_cast<uint32_t>(bits >> done) & mask) << (pos % 32);
        done += take;
    }
}

inline int64_t get_word(const uint32_t *chunks, int offset, int width, bool is_signed) {
    uint64_t bits = 0;
    for (int done = 0; done < width;) {
        int pos = offset + done;
        int take = 32 - pos % 32;
        if (take > width - done) take = width - done;
        uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
        bits |= static_cast<uint64_t>((chunks[pos / 32] >> (pos % 32)) & mask) << done;
        done += take;
    }
    if (is_signed && width < 64 && ((bits >> (width - 1)) & 1u)) bits |= ~uint64_t(0) << width;
    return static_cast<int64_t>(bits);
}

template <typename T>
std::enable_if_t<std::is_integral_v<T>> load_bus(T &bus, const uint32_t *chunks) {
    uint64_t v = chunks[0];
    if constexpr (sizeof(T) > 4) v |= static_cast<uint64_t>(chunks[1]) << 32;
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
    chunks[1] = static_cast<uint32_t>(v >> 32);
}

template <std::size_t N>
void store_bus(const VlWide<N> &bus, uint32_t *chunks) {
    for (std::size_t i = 0; i < N; ++i) chunks[i] = bus[i];
}

}  // namespace

#include "harness_ports.h"

namespace {

void tick(Vtop *dut, int level) {
    dut->ap_clk = level;
    dut->eval();
}

int simulate_block(const int64_t *in, int64_t *out, std::size_t events) {
    VerilatedContext context;
    auto dut = std::make_unique<Vtop>(&context);
    dut->ap_start = 0;
    set_input_valid(dut.get(), 0);
    set_continue(dut.get());
    for (int c = 0; c < RESET_CYCLES; ++c) {
        set_reset(dut.get(), true);
        tick(dut.get(), 0);
        tick(dut.get(), 1);
    }
    set_reset(dut.get(), false);

    std::vector<std::size_t> captured(N_OUT_PORTS, 0);
    std::size_t next_in = 0;
    long stalled = 0;
    while (true) {
        bool complete = true;
        for (std::size_t c : captured) complete = complete && c >= events;
        if (complete) break;
        dut->ap_clk = 0;
        // After the last event, keep presenting it: a stall (non-flushable) pipeline
        // only moves when a new input enters; outputs beyond `events` are ignored.
        std::size_t shown = next_in < events ? next_in : events - 1;
        drive_inputs(dut.get(), in + shown * N_IN);
        set_input_valid(dut.get(), 1);
        dut->ap_start = 1;
        dut->eval();
        bool progress = capture_outputs(dut.get(), out, captured.data(), events);
        if (next_in < events && dut->ap_ready) {
            ++next_in;
            progress = true;
        }
        tick(dut.get(), 1);
        stalled = progress ? 0 : stalled + 1;
        if (stalled > MAX_STALL_CYCLES) {
            std::fprintf(stderr,
                         "the design made no progress for %ld clock cycles after taking %zu of %zu events "
                         "(no ap_ready, no output ap_vld / ap_done)\n",
                         stalled, next_in, events);
            return 5;
        }
    }
    dut->final();
    return 0;
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
    std::vector<int> status(threads, 0);
    for (int t = 0; t < threads; ++t) {
        std::size_t start = t * per;
        if (start >= events) break;
        std::size_t count = std::min(per, events - start);
        pool.emplace_back([&, t, start, count] {
            status[t] = simulate_block(in.data() + start * N_IN, out.data() + start * N_OUT, count);
        });
    }
    for (auto &th : pool) th.join();
    for (int s : status)
        if (s != 0) return s;

    FILE *fout = std::fopen(argv[2], "wb");
    if (!fout || std::fwrite(out.data(), sizeof(int64_t), out.size(), fout) != out.size()) {
        std::fprintf(stderr, "%s: cannot write outputs\n", argv[2]);
        return 4;
    }
    std::fclose(fout);
    return 0;
}
