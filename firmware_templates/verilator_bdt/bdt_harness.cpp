// l1flow Verilator harness for conifer's BDT (ghdl synth --out=verilog, top BDTTop).
//
//   bdt_sim <input words file> <output words file>
//
// Input: one event per row, N_FEATURES signed decimal words (feature 0 first).
// Output: one event per row, N_CLASSES signed decimal words (class 0 first),
// in the order the pipeline emits them. One event enters per clock; the valid
// signal that travels with it through the pipeline says when its score is out,
// so no latency is assumed. Exit status 0 only if every event came out.
//
// bdt_config.h (written beside it) defines N_FEATURES, N_CLASSES and
// WORD_WIDTH; the model is verilated with --prefix Vtop. ghdl synth
// flattens a VHDL array (0 to n-1) into one vector with element 0 in the most
// significant bits, so element i sits at bit (n-1-i)*WORD_WIDTH.
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

#include "Vtop.h"
#include "bdt_config.h"
#include "verilated.h"

#ifndef N_FEATURES
#error "define N_FEATURES"
#endif
#ifndef N_CLASSES
#error "define N_CLASSES"
#endif
#ifndef WORD_WIDTH
#error "define WORD_WIDTH"
#endif

static_assert(WORD_WIDTH >= 1 && WORD_WIDTH <= 64, "words are held in int64");

// Cycles to wait for outstanding events after the last input before giving
// up; far above any conifer pipeline (depth + log2(trees) + a few).
static const long kDrainLimit = 100000;

static uint64_t word_mask() { return WORD_WIDTH == 64 ? ~0ULL : ((1ULL << WORD_WIDTH) - 1); }

// ---- packing words into / out of Verilator ports of any width ----
template <typename P>
static void clear_port(P& port) {
    if constexpr (std::is_integral<P>::value) {
        port = 0;
    } else {
        for (std::size_t i = 0; i < P::Words; ++i) port[i] = 0;
    }
}

template <typename P>
static void or_bits(P& port, int lsb, uint64_t value) {
    value &= word_mask();
    if constexpr (std::is_integral<P>::value) {
        port |= static_cast<P>(value << lsb);
    } else {
        // 32-bit storage words; a word of up to 64 bits spans at most 3 of them
        for (int done = 0; done < WORD_WIDTH;) {
            const int bit = lsb + done;
            const int offset = bit % 32;
            const int take = std::min(32 - offset, WORD_WIDTH - done);
            const uint64_t piece = (value >> done) & ((1ULL << take) - 1);
            port[bit / 32] |= static_cast<uint32_t>(piece << offset);
            done += take;
        }
    }
}

template <typename P>
static int64_t get_signed(const P& port, int lsb) {
    uint64_t raw = 0;
    if constexpr (std::is_integral<P>::value) {
        raw = (static_cast<uint64_t>(port) >> lsb) & word_mask();
    } else {
        for (int done = 0; done < WORD_WIDTH;) {
            const int bit = lsb + done;
            const int offset = bit % 32;
            const int take = std::min(32 - offset, WORD_WIDTH - done);
            const uint64_t piece = (static_cast<uint64_t>(port[bit / 32]) >> offset) & ((1ULL << take) - 1);
            raw |= piece << done;
            done += take;
        }
    }
    if (WORD_WIDTH < 64 && (raw >> (WORD_WIDTH - 1)) & 1ULL) raw |= ~word_mask();  // sign-extend
    return static_cast<int64_t>(raw);
}

template <typename P>
static bool bit_set(const P& port, int bit) {
    if constexpr (std::is_integral<P>::value) {
        return (static_cast<uint64_t>(port) >> bit) & 1ULL;
    } else {
        return (port[bit / 32] >> (bit % 32)) & 1U;
    }
}

// ---- buffered word reader / writer (no iostreams on the hot path) ----
class WordReader {
  public:
    explicit WordReader(const char* path) : file_(std::fopen(path, "rb")), path_(path) {
        if (!file_) {
            std::fprintf(stderr, "cannot open input words %s: %s\n", path, std::strerror(errno));
            std::exit(2);
        }
        buffer_.resize(1 << 20);
    }
    ~WordReader() { std::fclose(file_); }

    // Next event's words; false at the end of the file. Exits on a short row.
    bool next_event(int64_t* words, long row) {
        skip_blank_lines();
        if (!fill(1)) return false;
        for (int i = 0; i < N_FEATURES; ++i) {
            skip_spaces();
            if (!fill(1) || !parse_int(&words[i])) {
                std::fprintf(stderr, "%s: row %ld has fewer than %d integer words\n", path_, row + 1, N_FEATURES);
                std::exit(3);
            }
        }
        skip_spaces();
        if (fill(1) && buffer_[pos_] != '\n' && buffer_[pos_] != '\r') {
            std::fprintf(stderr, "%s: row %ld has more than %d words\n", path_, row + 1, N_FEATURES);
            std::exit(3);
        }
        return true;
    }

  private:
    bool fill(std::size_t need) {
        if (end_ - pos_ >= need) return true;
        std::memmove(buffer_.data(), buffer_.data() + pos_, end_ - pos_);
        end_ -= pos_;
        pos_ = 0;
        end_ += std::fread(buffer_.data() + end_, 1, buffer_.size() - end_, file_);
        return end_ - pos_ >= need;
    }
    void skip_spaces() {
        while (fill(1) && (buffer_[pos_] == ' ' || buffer_[pos_] == '\t')) ++pos_;
    }
    void skip_blank_lines() {
        while (fill(1) && (buffer_[pos_] == ' ' || buffer_[pos_] == '\t' || buffer_[pos_] == '\n' || buffer_[pos_] == '\r')) ++pos_;
    }
    bool parse_int(int64_t* out) {
        fill(32);  // one decimal int64 is at most 20 characters
        bool negative = false;
        if (pos_ < end_ && (buffer_[pos_] == '-' || buffer_[pos_] == '+')) negative = buffer_[pos_++] == '-';
        uint64_t value = 0;
        std::size_t digits = 0;
        while (pos_ < end_ && buffer_[pos_] >= '0' && buffer_[pos_] <= '9') {
            value = value * 10 + static_cast<uint64_t>(buffer_[pos_++] - '0');
            ++digits;
        }
        *out = negative ? -static_cast<int64_t>(value) : static_cast<int64_t>(value);
        return digits > 0;
    }

    std::FILE* file_;
    const char* path_;
    std::vector<char> buffer_;
    std::size_t pos_ = 0;
    std::size_t end_ = 0;
};

class WordWriter {
  public:
    explicit WordWriter(const char* path) : file_(std::fopen(path, "wb")) {
        if (!file_) {
            std::fprintf(stderr, "cannot open output words %s: %s\n", path, std::strerror(errno));
            std::exit(2);
        }
    }
    ~WordWriter() {
        flush();
        std::fclose(file_);
    }
    void event(const int64_t* words) {
        for (int i = 0; i < N_CLASSES; ++i) {
            if (i) text_.push_back(' ');
            char digits[24];
            const int n = std::snprintf(digits, sizeof digits, "%lld", static_cast<long long>(words[i]));
            text_.insert(text_.end(), digits, digits + n);
        }
        text_.push_back('\n');
        if (text_.size() > (1 << 20)) flush();
    }

  private:
    void flush() {
        std::fwrite(text_.data(), 1, text_.size(), file_);
        text_.clear();
    }
    std::FILE* file_;
    std::vector<char> text_;
};

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s <input words> <output words>\n", argv[0]);
        return 1;
    }
    const std::unique_ptr<VerilatedContext> context{new VerilatedContext};
    const std::unique_ptr<Vtop> top{new Vtop{context.get()}};
    WordReader reader(argv[1]);
    WordWriter writer(argv[2]);

    int64_t in_words[N_FEATURES];
    int64_t out_words[N_CLASSES];
    long events_in = 0;
    long events_out = 0;
    bool input_done = false;
    long idle_cycles = 0;

    top->clk = 0;
    top->X_vld = 0;
    clear_port(top->X);
    top->eval();
    while (!input_done || events_out < events_in) {
        if (!input_done && reader.next_event(in_words, events_in)) {
            clear_port(top->X);
            for (int i = 0; i < N_FEATURES; ++i) or_bits(top->X, (N_FEATURES - 1 - i) * WORD_WIDTH, static_cast<uint64_t>(in_words[i]));
            top->X_vld = 1;
            ++events_in;
        } else {
            input_done = true;
            top->X_vld = 0;
            if (++idle_cycles > kDrainLimit) {
                std::fprintf(stderr, "pipeline drained only %ld of %ld events\n", events_out, events_in);
                return 4;
            }
        }
        top->clk = 0;
        top->eval();
        top->clk = 1;
        top->eval();
        // class 0's valid is the most significant bit of y_vld
        if (bit_set(top->y_vld, N_CLASSES - 1)) {
            for (int c = 0; c < N_CLASSES; ++c) out_words[c] = get_signed(top->y, (N_CLASSES - 1 - c) * WORD_WIDTH);
            writer.event(out_words);
            ++events_out;
        }
    }
    top->final();
    return 0;
}
