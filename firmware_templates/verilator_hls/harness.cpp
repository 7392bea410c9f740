// Drive a Vitis/Vivado HLS top level (ap_ctrl_hs handshake, ap_vld ports)
// with test vectors and collect its outputs, no Python per event.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads> [+plusarg ...]
//
// Every simulation context gets the command line (Verilated commandArgs):
// Vitis's pipeline helpers (*_frp_fifoout, *_frp_pipeline_valid) read
// $value$plusargs and Verilator aborts a design that does so without it.
//
// The word files and threads are word_stream.h's (N_IN words in, N_OUT
// words out per event). The port-specific code (which bits of which
// Verilog port carry which word, which ports have ap_vld) is generated into
// harness_ports.h from the top module's port list by l1flow.hardware.hls_verilog.
//
// Each clock: inputs of the next event are presented with ap_start and the
// input ap_vld high (the last event repeats until every output is out); before the rising edge the handshake is sampled (an
// event is taken when ap_ready is high; an output word is captured when its
// ap_vld, or ap_done for ports without one, is high), then the edge is applied.
#include <cstdint>
#include <cstdio>
#include <memory>
#include <vector>

#include "verilated.h"
#include "Vtop.h"
#include "word_stream.h"

namespace {

using word_stream::get_bits;
using word_stream::load_bus;
using word_stream::put_bits;
using word_stream::store_bus;

int g_argc = 0;
char **g_argv = nullptr;

}  // namespace

#include "harness_ports.h"

namespace {

void tick(Vtop *dut, int level) {
    dut->ap_clk = level;
    dut->eval();
}

int simulate_block(const int64_t *in, int64_t *out, std::size_t events) {
    VerilatedContext context;
    context.commandArgs(g_argc, g_argv);
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
        if (context.gotFinish()) {
            std::fprintf(stderr, "the design called $finish after taking %zu of %zu events\n", next_in, events);
            return 6;
        }
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
    g_argc = argc;
    g_argv = argv;
    return word_stream::run(argc, argv, N_IN, N_OUT, simulate_block);
}
