// @LIB@: the hls4ml C simulation of @MODEL@ version @VERSION@ as an
// hls4mlEmulator::Model and a plain C entry point (written by l1flow).
//
// The project's firmware sources are compiled unchanged inside the namespace
// @NS@, so its weights, layer configurations and template instances are
// distinct from any other model's even in one process; the headers they use
// from outside (C++ library, ap_types) are included first, outside it.
// exports.map and -fvisibility=hidden keep everything but create_model,
// destroy_model and l1flow_predict_words out of the dynamic symbol table.
@EXTERNAL_INCLUDES@
#include <algorithm>
#include <type_traits>

#include "emulator.h"
#include "l1flow_emulator.h"

namespace @NS@ {
#include "raw_words.h"
#include "@PROJECT@.h"
// The weights as synthesis sees them: the arrays initialised in the headers.
// hls4ml's C-sim would instead read weights/*.txt (same values) from a
// compile-time folder at the first call, exit() when absent and race between
// threads; so the weight headers and the top function see __SYNTHESIS__.
#define __SYNTHESIS__
@WEIGHT_INCLUDES@
#undef __SYNTHESIS__
#include "parameters.h"
#define __SYNTHESIS__
#include "@PROJECT@.cpp"
#undef __SYNTHESIS__
@TRACE_GLOBALS@
static const int N_IN = @N_IN@;
static const int N_OUT = @N_OUT@;
static const bool OUT_SIGNED = @OUT_SIGNED@;
typedef @INPUT_T@ emulator_input_t;
typedef @OUTPUT_T@ emulator_output_t;
// The vectors' port types (what prepare_input / read_result take) are the firmware's types.
static_assert(std::is_same<emulator_input_t, @INPUT_CPP@>::value, "input type differs from vectors/meta.json");
static_assert(std::is_same<emulator_output_t, @OUTPUT_CPP@>::value, "output type differs from vectors/meta.json");

class Emulator : public hls4mlEmulator::Model {
  public:
    // input: emulator_input_t* to N_IN values (@INPUT_CPP@)
    void prepare_input(std::any input) override {
        const emulator_input_t *values = std::any_cast<emulator_input_t *>(input);
        std::copy(values, values + N_IN, input_);
    }
    void predict() override { @TOP@(input_, output_); }
    // result: emulator_output_t* to N_OUT values (@OUTPUT_CPP@)
    void read_result(std::any result) override {
        emulator_output_t *values = std::any_cast<emulator_output_t *>(result);
        std::copy(output_, output_ + N_OUT, values);
    }

  private:
    emulator_input_t input_[N_IN] = {};
    emulator_output_t output_[N_OUT] = {};
};

static int predict_words(const long long *inputs, long long *outputs, long long n_events) {
    if (n_events < 0 || (n_events > 0 && (inputs == nullptr || outputs == nullptr)))
        return -1;
    for (long long event = 0; event < n_events; event++) {
        emulator_input_t input[N_IN];
        emulator_output_t output[N_OUT];
        for (int i = 0; i < N_IN; i++)
            set_word(input[i], inputs[event * N_IN + i]);
        @TOP@(input, output);
        for (int j = 0; j < N_OUT; j++)
            outputs[event * N_OUT + j] = get_word(output[j], OUT_SIGNED);
    }
    return 0;
}
} // namespace @NS@

extern "C" __attribute__((visibility("default"))) hls4mlEmulator::Model *create_model() {
    return new @NS@::Emulator;
}

extern "C" __attribute__((visibility("default"))) void destroy_model(hls4mlEmulator::Model *model) { delete model; }

extern "C" __attribute__((visibility("default"))) int l1flow_predict_words(const long long *inputs, long long *outputs,
                                                                          long long n_events) {
    return @NS@::predict_words(inputs, outputs, n_events);
}
