// Implemented in this session (see frame.h).
#include "ws/frame.h"
