// Names of the event enums as the TS side spells them.
#include "events.h"

namespace inference {

const char * faultKindName(FaultKind k) {
    switch (k) {
        case FaultKind::ContextPoisoned: return "ContextPoisoned";
        case FaultKind::OutOfMemory: return "OutOfMemory";
        case FaultKind::Unrecoverable: return "Unrecoverable";
    }
    return "Unrecoverable";
}

const char * finishReasonName(FinishReason r) {
    switch (r) {
        case FinishReason::Stop: return "stop";
        case FinishReason::Length: return "length";
        case FinishReason::Cancelled: return "cancelled";
    }
    return "stop";
}

}  // namespace inference
