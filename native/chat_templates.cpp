// See chat.h. The request handling follows llama-server's chat path
// (oaicompat_chat_params_parse, task_result_state::update_chat_msg) in the vendored source.
#include "chat_templates.h"

#include <algorithm>
#include <random>
#include <cctype>
#include <regex>
#include <set>
#include <utility>
#include <stdexcept>

#include "chat.h"  // llama.cpp's common chat layer
#include "json.h"

namespace inference {

void ChatTemplatesDeleter::operator()(common_chat_templates * t) const { common_chat_templates_free(t); }

namespace {

std::string randomId() {
    static const char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    thread_local std::mt19937 rng{std::random_device{}()};
    std::uniform_int_distribution<size_t> pick(0, sizeof(alphabet) - 2);
    std::string id = "call_";
    for (int i = 0; i < 24; ++i) id += alphabet[pick(rng)];
    return id;
}

common_chat_format formatByName(const std::string & name) {
    for (int f = 0; f < COMMON_CHAT_FORMAT_COUNT; ++f) {
        const auto fmt = static_cast<common_chat_format>(f);
        if (name == common_chat_format_name(fmt)) return fmt;
    }
    throw std::invalid_argument("unknown chat output format '" + name + "'");
}

GrammarTrigger toTrigger(const common_grammar_trigger & t) {
    switch (t.type) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:  // its text; resolved to the token again at submit
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:
            return {GrammarTrigger::Type::Word, t.value};
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:
            return {GrammarTrigger::Type::Pattern, t.value};
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL:
            return {GrammarTrigger::Type::PatternFull, t.value};
    }
    throw std::runtime_error("unknown grammar trigger type");
}

/**
 * llama.cpp's grammar for a required tool call lets free text precede the call (the
 * root rule's optional `until-N` part, any text up to the tool-call marker). A small
 * model then writes text until it runs out of tokens; with the call forced, it cannot.
 * So a required (or named) choice drops that part: the answer starts with the call.
 */
void forceCallFirst(std::string & grammar) {
    const size_t start = grammar.rfind("root ::= ", 0) == 0 ? 0 : grammar.find("\nroot ::= ");
    if (start == std::string::npos) return;
    const size_t end = grammar.find('\n', start + 1);
    const size_t len = (end == std::string::npos ? grammar.size() : end) - start;
    static const std::regex optionalText(R"(\s+until-[0-9]+\?)");
    grammar.replace(start, len, std::regex_replace(grammar.substr(start, len), optionalText, ""));
}

/**
 * Templates whose calls each sit in their own markers (Qwen2.5's <tool_call>...</tool_call>)
 * get a grammar of one or more calls whatever `parallel_tool_calls` says; without
 * parallel calls the answer may hold only one.
 */
void singleCall(std::string & grammar) {
    static const std::regex many(R"((\ntool-calls ::= )\((tool-call space)\)\+\n)");
    grammar = std::regex_replace(grammar, many, "$1$2\n");
}


/** GBNF rules in order, `name ::= body` each (a line not starting a rule continues the last one). */
std::vector<std::pair<std::string, std::string>> gbnfRules(const std::string & grammar) {
    static const std::regex head(R"(^([A-Za-z0-9_-]+) ::= ?(.*)$)");
    std::vector<std::pair<std::string, std::string>> rules;
    size_t at = 0;
    while (at < grammar.size()) {
        size_t nl = grammar.find('\n', at);
        if (nl == std::string::npos) nl = grammar.size();
        const std::string line = grammar.substr(at, nl - at);
        at = nl + 1;
        std::smatch m;
        if (std::regex_match(line, m, head)) rules.emplace_back(m[1].str(), m[2].str());
        else if (!rules.empty() && !line.empty()) rules.back().second += "\n" + line;
    }
    return rules;
}

/** `body` with every reference to a rule of `names` prefixed (literals and character classes left alone). */
std::string prefixRefs(const std::string & body, const std::set<std::string> & names, const std::string & prefix) {
    std::string out;
    size_t i = 0;
    const auto ident = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_'; };
    while (i < body.size()) {
        const char c = body[i];
        if (c == '"' || c == '[') {
            const char close = c == '"' ? '"' : ']';
            size_t j = i + 1;
            while (j < body.size() && body[j] != close) j += body[j] == '\\' ? 2 : 1;
            j = std::min(j + 1, body.size());
            out.append(body, i, j - i);
            i = j;
        } else if (ident(c)) {
            size_t j = i;
            while (j < body.size() && ident(body[j])) ++j;
            const std::string id = body.substr(i, j - i);
            out += names.count(id) != 0 ? prefix + id : id;
            i = j;
        } else {
            out += c;
            ++i;
        }
    }
    return out;
}

/**
 * One grammar that takes either tool calls (`calls`, a forced-call grammar) or a JSON answer
 * (`answer`, a response-format grammar): the answer's rules are renamed apart, and the
 * answer is the JSON alone, not wrapped in a Markdown fence nor followed by blanks (as
 * OpenAI answers it): the tools' parser takes it as content verbatim.
 */
std::string eitherGrammar(const std::string & calls, const std::string & answer) {
    static const std::string prefix = "answer-";
    // llama.cpp's alternatives `("```json" space response-format space "```" | space response-format space)`
    // become `(space response-format)`: the JSON alone, and the answer ends where the JSON does.
    static const std::regex fence(R"re("```json" space response-format space "```" \| space response-format space\))re");
    const auto answerRules = gbnfRules(answer);
    std::set<std::string> names;
    for (const auto & r : answerRules) names.insert(r.first);
    std::string out;
    for (const auto & r : gbnfRules(calls)) out += (r.first == "root" ? std::string("call-root") : r.first) + " ::= " + r.second + "\n";
    for (const auto & r : answerRules) {
        const std::string body = r.first == "root" ? std::regex_replace(r.second, fence, "space response-format)") : r.second;
        out += prefix + r.first + " ::= " + prefixRefs(body, names, prefix) + "\n";
    }
    out += "root ::= call-root | " + prefix + "root\n";
    return out;
}

}  // namespace

ChatTemplates::ChatTemplates(const llama_model * model, const std::string & source, bool useJinja)
    : t_(common_chat_templates_init(model, source).release()), useJinja_(useJinja) {
    if (!t_) throw std::runtime_error("the chat template cannot be initialised");
}

std::string ChatTemplates::source() const { return common_chat_templates_source(t_.get()); }

bool ChatTemplates::nativeTools() const {
    const auto caps = common_chat_templates_get_caps(t_.get());
    const auto it = caps.find("supports_tools");
    return it != caps.end() && it->second;
}

common_chat_templates_inputs ChatTemplates::inputs(const ChatInput & input) const {
    common_chat_templates_inputs in;
    in.messages = common_chat_msgs_parse_oaicompat(common_json::parse(input.messagesJson));
    if (!input.toolsJson.empty()) in.tools = common_chat_tools_parse_oaicompat(common_json::parse(input.toolsJson));
    in.tool_choice = common_chat_tool_choice_parse_oaicompat(input.toolChoice);
    in.json_schema = input.jsonSchema;
    in.use_jinja = useJinja_;
    in.parallel_tool_calls = input.parallelToolCalls;
    in.add_generation_prompt = true;
    in.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;  // llama-server's default
    in.enable_thinking = true;
    // chat_template_kwargs and reasoning_effort as llama-server takes them (oaicompat_chat_params_parse).
    if (!input.templateKwargsJson.empty()) {
        const auto kwargs = common_json::parse(input.templateKwargsJson);
        if (!kwargs.is_object()) throw std::invalid_argument("chat_template_kwargs must be an object");
        for (const auto & item : kwargs.items()) in.chat_template_kwargs[item.key()] = item.value().dump();
    }
    const auto thinking = in.chat_template_kwargs.find("enable_thinking");
    if (thinking != in.chat_template_kwargs.end()) {
        if (thinking->second == "true") in.enable_thinking = true;
        else if (thinking->second == "false") in.enable_thinking = false;
        else throw std::invalid_argument("chat_template_kwargs.enable_thinking must be a boolean");
    }
    if (input.reasoningEffort == "none") {
        in.enable_thinking = false;
        in.chat_template_kwargs.erase("reasoning_effort");
    } else if (!input.reasoningEffort.empty()) {
        in.chat_template_kwargs["reasoning_effort"] = common_json(input.reasoningEffort).dump();
    }
    // A conversation that ends with an assistant message is continued (a prefill), as llama-server does.
    if (!in.messages.empty() && in.messages.back().role == "assistant") {
        if (in.messages.size() >= 2 && in.messages[in.messages.size() - 2].role == "assistant") {
            throw std::invalid_argument("Cannot have 2 or more assistant messages at the end of the list.");
        }
        if (!in.messages.back().tool_calls.empty()) {
            throw std::invalid_argument("Cannot continue an assistant message that contains tool calls.");
        }
        in.continue_final_message = COMMON_CHAT_CONTINUATION_AUTO;
        in.add_generation_prompt = false;
    }
    return in;
}

ChatPrompt ChatTemplates::render(const common_chat_templates_inputs & in) const {
    common_chat_params p = common_chat_templates_apply(t_.get(), in);
    ChatPrompt out;
    out.prompt = std::move(p.prompt);
    out.format = common_chat_format_name(p.format);
    out.generationPrompt = std::move(p.generation_prompt);
    out.parser = std::move(p.parser);
    out.grammar = std::move(p.grammar);
    if (in.tool_choice == COMMON_CHAT_TOOL_CHOICE_REQUIRED && !in.tools.empty() && !p.grammar_lazy) forceCallFirst(out.grammar);
    if (!in.parallel_tool_calls && !in.tools.empty()) singleCall(out.grammar);
    out.grammarLazy = p.grammar_lazy;
    for (const auto & t : p.grammar_triggers) out.grammarTriggers.push_back(toTrigger(t));
    out.preservedTokens = std::move(p.preserved_tokens);
    out.additionalStops = std::move(p.additional_stops);
    out.continuation = in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE;
    return out;
}

ChatPrompt ChatTemplates::apply(const ChatInput & input) const {
    common_chat_templates_inputs in = inputs(input);
    const bool tools = !in.tools.empty() && in.tool_choice != COMMON_CHAT_TOOL_CHOICE_NONE;
    if (!tools || in.json_schema.empty() || !useJinja_) return render(in);
    // Tools and a response format (docs/chat-templates.md): llama.cpp's chat layer lets the
    // schema replace the tools, so no call could be made. As OpenAI does, a forced call comes
    // first (the schema shapes a later answer), and with `auto` the answer is either calls or
    // JSON that fits the schema: the prompt and parser are the tools' own, the grammar allows both.
    std::string schema;
    schema.swap(in.json_schema);
    ChatPrompt out = render(in);
    if (in.tool_choice != COMMON_CHAT_TOOL_CHOICE_AUTO) return out;
    common_chat_templates_inputs forced = in;
    forced.tool_choice = COMMON_CHAT_TOOL_CHOICE_REQUIRED;
    const ChatPrompt calls = render(forced);
    common_chat_templates_inputs answer = in;
    answer.json_schema = schema;
    const ChatPrompt json = render(answer);
    if (calls.grammar.empty() || json.grammar.empty() || calls.grammarLazy || json.grammarLazy) return json;
    out.grammar = eitherGrammar(calls.grammar, json.grammar);
    out.grammarLazy = false;
    out.grammarTriggers.clear();
    return out;
}

struct ChatOutputParser::State {
    common_chat_parser_params params;
    std::string text;
    common_chat_msg msg;
    std::vector<std::string> ids;
};

ChatOutputParser::ChatOutputParser(const std::string & format, const std::string & generationPrompt,
                                   const std::string & parser, bool parseToolCalls, bool continuation)
    : s_(std::make_unique<State>()) {
    s_->params.format = formatByName(format);
    s_->params.generation_prompt = generationPrompt;
    s_->params.reasoning_format = COMMON_REASONING_FORMAT_DEEPSEEK;
    s_->params.parse_tool_calls = parseToolCalls;
    s_->params.is_continuation = continuation;
    if (!parser.empty()) {
        try {
            s_->params.parser.load(parser);
        } catch (const std::exception & e) {
            throw std::invalid_argument(std::string("the chat output parser does not load: ") + e.what());
        }
    }
    s_->msg.role = "assistant";
    if (continuation) {
        // Like llama-server: the prefill the conversation ended with is not emitted again.
        try {
            s_->msg = common_chat_parse("", true, s_->params);
        } catch (const std::exception &) {
        }
    }
}

ChatOutputParser::~ChatOutputParser() = default;

std::vector<ChatDelta> ChatOutputParser::push(const std::string & text, bool partial) {
    s_->text += text;
    common_chat_msg next;
    try {
        next = common_chat_parse(s_->text, partial, s_->params);
    } catch (const std::exception &) {
        if (partial) return {};
        // Output that does not match the template's format is plain content; what the
        // client was already sent is never taken back.
        next = s_->msg;
        if (next.tool_calls.empty() && next.reasoning_content.empty() && s_->text.rfind(next.content, 0) == 0) {
            next.content = s_->text;
        }
    }
    if (next.empty()) return {};
    next.set_tool_call_ids(s_->ids, randomId);
    std::vector<common_chat_msg_diff> diffs;
    try {
        diffs = common_chat_msg_diff::compute_diffs(s_->msg, next);
    } catch (const std::exception &) {
        return {};  // a re-parse that rewrites what was sent: wait for more text
    }
    s_->msg = std::move(next);
    std::vector<ChatDelta> out;
    out.reserve(diffs.size());
    for (const auto & d : diffs) {
        ChatDelta c;
        c.content = d.content_delta;
        c.reasoning = d.reasoning_content_delta;
        if (d.tool_call_index != std::string::npos) {
            c.toolIndex = static_cast<int32_t>(d.tool_call_index);
            c.tool = {d.tool_call_delta.id, d.tool_call_delta.name, d.tool_call_delta.arguments};
        }
        out.push_back(std::move(c));
    }
    return out;
}

ChatMessageOut ChatOutputParser::message() const {
    ChatMessageOut m;
    m.content = s_->msg.content;
    m.reasoning = s_->msg.reasoning_content;
    for (const auto & t : s_->msg.tool_calls) m.toolCalls.push_back({t.id, t.name, t.arguments});
    return m;
}

}  // namespace inference
