/* The plain C entry point of an l1flow emulator library (for any language).
 *
 *   int l1flow_predict_words(const long long *inputs, long long *outputs, long long n_events);
 *
 * `inputs` holds n_events rows of the model's input words and `outputs`
 * receives n_events rows of its output words, in the order of the bundled
 * test vectors (vectors/meta.json names every port, type and shape). A word
 * is the raw two's complement integer of the port's ap_ type, sign-extended
 * to 64 bits (unsigned types hold non-negative words). Returns 0, or -1 when
 * n_events is negative or a pointer is null with n_events > 0.
 */
#ifndef L1FLOW_EMULATOR_H_
#define L1FLOW_EMULATOR_H_

#ifdef __cplusplus
extern "C" {
#endif

int l1flow_predict_words(const long long *inputs, long long *outputs, long long n_events);

#ifdef __cplusplus
}
#endif

#endif
