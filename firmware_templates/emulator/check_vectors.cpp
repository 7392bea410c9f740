// `make check`: load @LIB@.so the way a framework does (dlopen with
// RTLD_GLOBAL), run the bundled test vectors through the C entry point and
// through hls4mlEmulator::Model, and compare every output word with the
// vectors' expected words (written by l1flow). Exit 0: all equal; 1: a word
// differs; 2: the library or a vector file cannot be used.
//
//   check_vectors LIBRARY INPUTS OUTPUTS
#include <dlfcn.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "ap_fixed.h"
#include "ap_int.h"

#include "emulator.h"
#include "raw_words.h"

typedef int predict_words_fn(const long long *, long long *, long long);
typedef @INPUT_CPP@ input_type;
typedef @OUTPUT_CPP@ output_type;
static const int N_IN = @N_IN@;
static const int N_OUT = @N_OUT@;
static const bool OUT_SIGNED = @OUT_SIGNED@;
static const int SHOWN = 5;

static bool read_words(const char *path, int width, std::vector<long long> &words, long long &events) {
    std::ifstream in(path);
    if (!in.is_open()) {
        std::cerr << "check_vectors: cannot open " << path << std::endl;
        return false;
    }
    std::string line;
    events = 0;
    while (std::getline(in, line)) {
        if (line.find_first_not_of(" \t\r") == std::string::npos)
            continue;
        std::istringstream row(line);
        long long word;
        int count = 0;
        while (row >> word) {
            words.push_back(word);
            count++;
        }
        if (count != width || !row.eof()) {
            std::cerr << "check_vectors: " << path << " line " << events + 1 << ": expected " << width
                      << " integer words" << std::endl;
            return false;
        }
        events++;
    }
    return true;
}

static long long count_mismatches(const char *label, const std::vector<long long> &got,
                                  const std::vector<long long> &expected) {
    long long mismatches = 0;
    for (size_t k = 0; k < expected.size(); k++) {
        if (got[k] == expected[k])
            continue;
        if (mismatches < SHOWN)
            std::cout << "  " << label << ": event " << k / N_OUT << " word " << k % N_OUT << ": got " << got[k]
                      << ", expected " << expected[k] << std::endl;
        mismatches++;
    }
    return mismatches;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        std::cerr << "usage: check_vectors LIBRARY INPUTS OUTPUTS" << std::endl;
        return 2;
    }
    void *library = dlopen(argv[1], RTLD_NOW | RTLD_GLOBAL);
    if (library == nullptr) {
        std::cerr << "check_vectors: cannot load " << argv[1] << ": " << dlerror() << std::endl;
        return 2;
    }
    predict_words_fn *predict_words = (predict_words_fn *)dlsym(library, "l1flow_predict_words");
    hls4mlEmulator::create_model_cls *create = (hls4mlEmulator::create_model_cls *)dlsym(library, "create_model");
    hls4mlEmulator::destroy_model_cls *destroy = (hls4mlEmulator::destroy_model_cls *)dlsym(library, "destroy_model");
    if (!predict_words || !create || !destroy) {
        std::cerr << "check_vectors: " << argv[1] << " lacks l1flow_predict_words, create_model or destroy_model"
                  << std::endl;
        return 2;
    }
    std::vector<long long> inputs, expected;
    long long events = 0, expected_events = 0;
    if (!read_words(argv[2], N_IN, inputs, events) || !read_words(argv[3], N_OUT, expected, expected_events))
        return 2;
    if (events != expected_events) {
        std::cerr << "check_vectors: " << events << " input events but " << expected_events << " output events"
                  << std::endl;
        return 2;
    }

    std::vector<long long> by_words(expected.size());
    if (predict_words(inputs.data(), by_words.data(), events) != 0) {
        std::cerr << "check_vectors: l1flow_predict_words refused the vectors" << std::endl;
        return 2;
    }

    std::vector<long long> by_model(expected.size());
    hls4mlEmulator::Model *model = create();
    input_type x[N_IN];
    output_type y[N_OUT];
    for (long long event = 0; event < events; event++) {
        for (int i = 0; i < N_IN; i++)
            set_word(x[i], inputs[event * N_IN + i]);
        model->prepare_input(x);
        model->predict();
        model->read_result(y);
        for (int j = 0; j < N_OUT; j++)
            by_model[event * N_OUT + j] = get_word(y[j], OUT_SIGNED);
    }
    destroy(model);

    long long words_mismatching = count_mismatches("l1flow_predict_words", by_words, expected);
    long long model_mismatching = count_mismatches("hls4mlEmulator::Model", by_model, expected);
    std::cout << "@LIB@: " << events << " events, " << expected.size() << " output words; mismatching words: "
              << words_mismatching << " (l1flow_predict_words), " << model_mismatching << " (hls4mlEmulator::Model)"
              << std::endl;
    dlclose(library);
    return words_mismatching == 0 && model_mismatching == 0 ? 0 : 1;
}
