// The hls4mlEmulator::Model interface of the hls4mlEmulatorExtras package, as
// CMS-style frameworks load emulators (ModelLoader dlopens lib<model>.so and
// calls its extern "C" create_model / destroy_model). Written by l1flow with
// the same include guard, virtual functions in the same order and the same
// factory types, so the library works with the framework's own copy.
#ifndef HLS4ML_EMULATOR_H_
#define HLS4ML_EMULATOR_H_

#include <any>

namespace hls4mlEmulator {

class Model {
  public:
    virtual void prepare_input(std::any input) = 0;
    virtual void predict() = 0;
    virtual void read_result(std::any result) = 0;
    virtual ~Model() = default;
};

typedef Model *create_model_cls();
typedef void destroy_model_cls(Model *);

} // namespace hls4mlEmulator

#endif
