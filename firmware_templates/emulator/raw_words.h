// Raw port words <-> ap_ types (the test-vector contract: two's complement
// bits, sign-extended to 64 bits for signed types). Included inside the
// model's namespace, so nothing here is shared between libraries.
#ifndef L1FLOW_RAW_WORDS_H_
#define L1FLOW_RAW_WORDS_H_

template <class T> void set_word(T &x, long long word) { x.range(T::width - 1, 0) = (unsigned long long)word; }

template <class T> long long get_word(const T &x, bool is_signed) {
    unsigned long long bits = x.range(T::width - 1, 0).to_uint64();
    if (is_signed && T::width < 64 && ((bits >> (T::width - 1)) & 1ULL))
        bits |= ~0ULL << T::width;
    return (long long)bits;
}

#endif
