// See text_stream.h.
#include "text_stream.h"

#include <algorithm>

namespace inference {

size_t utf8CompletePrefix(const std::string & bytes) {
    const size_t n = bytes.size();
    // Walk back over at most 3 continuation bytes to the last lead byte.
    size_t i = n;
    size_t back = 0;
    while (i > 0 && back < 4) {
        const auto c = static_cast<unsigned char>(bytes[i - 1]);
        if ((c & 0xC0) != 0x80) {
            size_t need = 1;
            if ((c & 0xE0) == 0xC0) need = 2;
            else if ((c & 0xF0) == 0xE0) need = 3;
            else if ((c & 0xF8) == 0xF0) need = 4;
            // An ASCII or invalid lead byte is complete by itself.
            return (n - (i - 1) >= need) ? n : i - 1;
        }
        --i;
        ++back;
    }
    return n;  // only continuation bytes (invalid): let them through
}

TextStream::TextStream(std::vector<std::string> stops) : stops_(std::move(stops)) {
    stops_.erase(std::remove_if(stops_.begin(), stops_.end(), [](const std::string & s) { return s.empty(); }),
                 stops_.end());
    for (const auto & s : stops_) maxStop_ = std::max(maxStop_, s.size());
}

TextStream::Output TextStream::push(const std::string & piece) {
    Output out;
    pendingBytes_ += piece;
    const size_t complete = utf8CompletePrefix(pendingBytes_);
    held_.append(pendingBytes_, 0, complete);
    pendingBytes_.erase(0, complete);
    if (stops_.empty()) {
        out.text.swap(held_);
        return out;
    }
    // The earliest stop string wins.
    size_t cut = std::string::npos;
    for (const auto & s : stops_) cut = std::min(cut, held_.find(s));
    if (cut != std::string::npos) {
        out.text = held_.substr(0, cut);
        out.stopped = true;
        held_.clear();
        pendingBytes_.clear();
        return out;
    }
    // Hold back the longest suffix that is a proper prefix of some stop string.
    size_t keep = 0;
    const size_t maxKeep = std::min(held_.size(), maxStop_ - 1);
    for (size_t k = maxKeep; k > 0; --k) {
        const char * tail = held_.data() + held_.size() - k;
        const bool isPrefix = std::any_of(stops_.begin(), stops_.end(), [&](const std::string & s) {
            return s.size() > k && s.compare(0, k, tail, k) == 0;
        });
        if (isPrefix) {
            keep = k;
            break;
        }
    }
    out.text = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
}

std::string TextStream::flush() {
    std::string out;
    out.swap(held_);
    pendingBytes_.clear();
    return out;
}

}  // namespace inference
