// @LIB@: conifer's C++ emulation of @MODEL@ version @VERSION@ (the BDT the
// l1flow gate verified) as an hls4mlEmulator::Model and a plain C entry point
// (written by l1flow).
//
// conifer.h and the project's types are compiled inside the namespace @NS@;
// the forest's JSON is compiled into the library (forest_json.inc), so the
// library reads no file of the bundle at run time. exports.map and
// -fvisibility=hidden keep everything but create_model, destroy_model and
// l1flow_predict_words out of the dynamic symbol table.
#include <algorithm>
#include <type_traits>
#include <cassert>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "ap_fixed.h"
#include "ap_int.h"
#include "nlohmann/json.hpp"

#include "emulator.h"
#include "l1flow_emulator.h"

namespace @NS@ {
#include "raw_words.h"
#include "conifer.h"

// The types of the conifer project (its bridge.cpp).
@BDT_CONFIG@

static const char FOREST_JSON[] =
#include "forest_json.inc"
    ;
static const int N_IN = @N_IN@;
static const int N_OUT = @N_OUT@;
static const bool OUT_SIGNED = @OUT_SIGNED@;
// conifer's cpp backend takes its inputs in the threshold type (the project
// requires input_precision == threshold_precision).
typedef BDTConfig::threshold_t emulator_input_t;
typedef BDTConfig::score_t emulator_output_t;
// The vectors' port types (what prepare_input / read_result take) are the firmware's types.
static_assert(std::is_same<emulator_input_t, @INPUT_CPP@>::value, "input type differs from vectors/meta.json");
static_assert(std::is_same<emulator_output_t, @OUTPUT_CPP@>::value, "output type differs from vectors/meta.json");
typedef conifer::BDT<BDTConfig> Forest;

// conifer's BDT reads its JSON from a named file: write the compiled-in copy
// to a private temporary file once, build the forest, remove the file.
static Forest *load_forest() {
    const char *folder = std::getenv("TMPDIR");
    std::string path = std::string(folder && *folder ? folder : "/tmp") + "/l1flow-@NS@-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    int fd = mkstemp(name.data());
    if (fd < 0)
        throw std::runtime_error("@LIB@: cannot create a temporary file in " + path.substr(0, path.rfind('/')) +
                                 " for the forest; set TMPDIR to a writable folder");
    const size_t size = sizeof(FOREST_JSON) - 1;
    bool written = write(fd, FOREST_JSON, size) == (ssize_t)size;
    close(fd);
    Forest *forest = nullptr;
    try {
        if (written)
            forest = new Forest(std::string(name.data()));
    } catch (...) {
        unlink(name.data());
        throw;
    }
    unlink(name.data());
    if (!written)
        throw std::runtime_error("@LIB@: could not write the forest to a temporary file (disk full?)");
    return forest;
}

// One forest per library, built at first use (thread-safe static
// initialisation) and shared: decision_function is const.
static const Forest &forest() {
    static const Forest *instance = load_forest();
    return *instance;
}

static void predict_one(const std::vector<emulator_input_t> &x, emulator_output_t *scores) {
    std::vector<emulator_output_t> y = forest().decision_function(x);
    std::copy(y.begin(), y.end(), scores);
}

class Emulator : public hls4mlEmulator::Model {
  public:
    // input: emulator_input_t* to N_IN values (@INPUT_CPP@)
    void prepare_input(std::any input) override {
        const emulator_input_t *values = std::any_cast<emulator_input_t *>(input);
        std::copy(values, values + N_IN, input_.begin());
    }
    void predict() override { predict_one(input_, output_); }
    // result: emulator_output_t* to N_OUT values (@OUTPUT_CPP@)
    void read_result(std::any result) override {
        emulator_output_t *values = std::any_cast<emulator_output_t *>(result);
        std::copy(output_, output_ + N_OUT, values);
    }

  private:
    std::vector<emulator_input_t> input_ = std::vector<emulator_input_t>(N_IN);
    emulator_output_t output_[N_OUT] = {};
};

static int predict_words(const long long *inputs, long long *outputs, long long n_events) {
    if (n_events < 0 || (n_events > 0 && (inputs == nullptr || outputs == nullptr)))
        return -1;
    std::vector<emulator_input_t> x(N_IN);
    emulator_output_t y[N_OUT];
    for (long long event = 0; event < n_events; event++) {
        for (int i = 0; i < N_IN; i++)
            set_word(x[i], inputs[event * N_IN + i]);
        predict_one(x, y);
        for (int j = 0; j < N_OUT; j++)
            outputs[event * N_OUT + j] = get_word(y[j], OUT_SIGNED);
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
