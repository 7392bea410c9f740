// Shared by the streaming Verilator harnesses (verilator_nn, verilator_hls):
// bit packing between int64 words and Verilator buses, and the main that maps
// the word files and simulates contiguous blocks of events, one thread each.
//
//   sim <inputs.bin> <outputs.bin> <events> <threads> [+plusarg ...]
//
// inputs.bin holds int64 raw words, n_in per event (row major); outputs.bin
// is created with n_out int64 words per event. Both files are memory-mapped,
// so no copy of the words is made and no Python runs per event.
#pragma once

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <type_traits>
#include <vector>

#include "verilated.h"

namespace word_stream {

// Chunk buffers carry this many spare 32-bit chunks so put_bits / get_bits may
// move a whole 64-bit window starting at any byte of the bus.
constexpr int kPadChunks = 2;

// Or `width` (<= 64) low bits of `word` into bit `offset` of a little-endian chunk array.
inline void put_bits(uint32_t *chunks, int offset, int width, int64_t word) {
    uint64_t bits = static_cast<uint64_t>(word);
    if (width <= 56) {  // fits one unaligned 64-bit window: the common case, no loop
        unsigned char *at = reinterpret_cast<unsigned char *>(chunks) + offset / 8;
        uint64_t window;
        std::memcpy(&window, at, sizeof window);
        window |= (bits & ((uint64_t(1) << width) - 1)) << (offset % 8);
        std::memcpy(at, &window, sizeof window);
        return;
    }
    for (int done = 0; done < width;) {
        int pos = offset + done;
        int take = std::min(32 - pos % 32, width - done);
        uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
        chunks[pos / 32] |= (static_cast<uint32_t>(bits >> done) & mask) << (pos % 32);
        done += take;
    }
}

// The `width` (<= 64) bits at `offset`, sign-extended when `is_signed`.
inline int64_t get_bits(const uint32_t *chunks, int offset, int width, bool is_signed) {
    uint64_t bits = 0;
    if (width <= 56) {
        const unsigned char *at = reinterpret_cast<const unsigned char *>(chunks) + offset / 8;
        uint64_t window;
        std::memcpy(&window, at, sizeof window);
        bits = (window >> (offset % 8)) & ((uint64_t(1) << width) - 1);
    } else {
        for (int done = 0; done < width;) {
            int pos = offset + done;
            int take = std::min(32 - pos % 32, width - done);
            uint32_t mask = take == 32 ? 0xFFFFFFFFu : ((1u << take) - 1u);
            bits |= static_cast<uint64_t>((chunks[pos / 32] >> (pos % 32)) & mask) << done;
            done += take;
        }
    }
    if (is_signed && width < 64 && ((bits >> (width - 1)) & 1u)) bits |= ~uint64_t(0) << width;
    return static_cast<int64_t>(bits);
}

// Verilator holds buses up to 64 bits as integers and wider ones as VlWide.
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

// Simulates `events` events from `in` into `out`; returns 0 or an exit status.
using BlockFn = int (*)(const int64_t *in, int64_t *out, std::size_t events);
// The latency in clock cycles a harness observes on its design, from the first of `events`
// input events; kLatencyUnobservable or kLatencyUnsettled when it cannot say.
using LatencyFn = int (*)(const int64_t *in, std::size_t events);
// No two probed events give different outputs, so no change can be timed.
constexpr int kLatencyUnobservable = -1;
// The output never showed the new event's result within the probe's cycles.
constexpr int kLatencyUnsettled = -2;

inline void *map_file(const char *path, int fd, std::size_t bytes, int prot, int flags) {
    void *p = mmap(nullptr, bytes, prot, flags | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) {
        std::fprintf(stderr, "%s: cannot map %zu bytes: %s\n", path, bytes, std::strerror(errno));
        std::exit(3);
    }
    return p;
}

// With `probe_latency`, its result is printed to stdout as "latency_cycles N" before the events stream.
inline int run(int argc, char **argv, int n_in, int n_out, BlockFn simulate_block, LatencyFn probe_latency = nullptr) {
    // Arguments after the fourth are Verilator plusargs (+name=value), left to the design.
    if (argc < 5) {
        std::fprintf(stderr, "usage: %s <inputs.bin> <outputs.bin> <events> <threads> [+plusarg ...]\n", argv[0]);
        return 2;
    }
    std::size_t events = std::strtoull(argv[3], nullptr, 10);
    int threads = std::max(1, std::atoi(argv[4]));
    std::size_t in_bytes = events * n_in * sizeof(int64_t), out_bytes = events * n_out * sizeof(int64_t);

    int in_fd = open(argv[1], O_RDONLY);
    struct stat st;
    if (in_fd < 0 || fstat(in_fd, &st) != 0 || static_cast<std::size_t>(st.st_size) != in_bytes) {
        std::fprintf(stderr, "%s: expected %zu events of %d int64 words (%zu bytes)\n", argv[1], events, n_in,
                     in_bytes);
        return 3;
    }
    int out_fd = open(argv[2], O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (out_fd < 0 || ftruncate(out_fd, static_cast<off_t>(out_bytes)) != 0) {
        std::fprintf(stderr, "%s: cannot create the output words: %s\n", argv[2], std::strerror(errno));
        return 4;
    }
    auto in = static_cast<const int64_t *>(map_file(argv[1], in_fd, in_bytes, PROT_READ, MAP_PRIVATE));
    auto out = static_cast<int64_t *>(map_file(argv[2], out_fd, out_bytes, PROT_READ | PROT_WRITE, MAP_SHARED));

    if (probe_latency != nullptr && events > 0) {
        std::printf("latency_cycles %d\n", probe_latency(in, events));
        std::fflush(stdout);
    }

    std::size_t per = (events + threads - 1) / threads;
    std::vector<std::thread> pool;
    std::vector<int> status(threads, 0);
    for (int t = 0; t < threads; ++t) {
        std::size_t start = t * per;
        if (start >= events) break;
        std::size_t count = std::min(per, events - start);
        pool.emplace_back([&, t, start, count] {
            status[t] = simulate_block(in + start * n_in, out + start * n_out, count);
        });
    }
    for (auto &th : pool) th.join();
    if (munmap(out, out_bytes) != 0 || close(out_fd) != 0) {
        std::fprintf(stderr, "%s: cannot write outputs: %s\n", argv[2], std::strerror(errno));
        return 4;
    }
    munmap(const_cast<int64_t *>(in), in_bytes);
    close(in_fd);
    for (int s : status)
        if (s != 0) return s;
    return 0;
}

}  // namespace word_stream
