#pragma once
// Live heap bytes for tests that measure what a structure costs: glibc
// malloc's own count (mallinfo2), so no test binary replaces operator new.
// AddressSanitizer replaces malloc and mallinfo2 then counts nothing, so such
// tests skip themselves there (the normal build runs them).
#include <malloc.h>

#include <cstddef>

namespace millstone::test {

#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kHeapIsCounted = false;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kHeapIsCounted = false;
#else
inline constexpr bool kHeapIsCounted = true;
#endif
#else
inline constexpr bool kHeapIsCounted = true;
#endif

inline size_t live_heap_bytes() {
  return mallinfo2().uordblks;
}

}  // namespace millstone::test
