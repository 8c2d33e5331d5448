import Foundation

/// A scanner rule: a stable id, a severity and the message a reviewer sees. Phrase rules carry
/// their patterns; the others are decided in code (`ToolContext`).
struct Rule: Sendable {
    let id: String
    let severity: Finding.Severity
    let message: String
    var patterns: [Pattern] = []

    // Hidden Unicode.
    static let tagCharacters = Rule(id: "unicode.tag-characters", severity: .hard,
        message: "Unicode tag characters (U+E0000–E007F) encode text a person cannot see but a model reads")
    static let bidiControl = Rule(id: "unicode.bidi-control", severity: .hard,
        message: "bidirectional control characters can make the displayed text differ from what the model reads")
    static let zeroWidth = Rule(id: "unicode.zero-width", severity: .hard,
        message: "zero-width characters hide text or split words to dodge review")
    static let controlCharacters = Rule(id: "unicode.control-characters", severity: .hard,
        message: "control characters (e.g. terminal escape sequences) can hide or rewrite displayed text")
    static let privateUse = Rule(id: "unicode.private-use", severity: .soft,
        message: "private-use characters have no defined meaning and may carry hidden data")
    static let softHyphen = Rule(id: "unicode.soft-hyphen", severity: .soft,
        message: "soft hyphens are invisible and can split words to dodge review")
    static let softHyphenInWord = Rule(id: "unicode.soft-hyphen-in-word", severity: .hard,
        message: "a soft hyphen inside an English word is invisible and splits the word to dodge review")

    static func unicodeRule(for u: Unicode.Scalar, in s: [Unicode.Scalar], at i: Int) -> Rule? {
        if UnicodeRules.isTag(u) { return .tagCharacters }
        if UnicodeRules.isBidi(u) { return .bidiControl }
        if UnicodeRules.isZeroWidth(u) && !UnicodeRules.isLegitimateJoiner(s, at: i) { return .zeroWidth }
        if UnicodeRules.isControl(u) { return .controlCharacters }
        if UnicodeRules.isPrivateUse(u) { return .privateUse }
        if u.value == 0x00AD {
            // Inside an ASCII word a soft hyphen only hides the word from review.
            func letter(_ k: Int) -> Bool { k >= 0 && k < s.count && s[k].isASCII && Character(s[k]).isLetter }
            return letter(i - 1) && letter(i + 1) ? .softHyphenInWord : .softHyphen
        }
        return nil
    }

    // Instruction injection.
    static let pseudoTag = Rule(id: "injection.pseudo-tag", severity: .hard,
        message: "a pseudo-tag such as <IMPORTANT> or <SYSTEM> addresses the model with instructions the user does not see",
        patterns: [
            Pattern(#"<\s*/?\s*(important|system|instructions?|admin|secret|hidden|critical|assistant|sys|override|directive|mandatory|rules?|ai|llm|model|note[\s_-]?to[\s_-]?(ai|assistant|model))\b[^<>]{0,40}>"#),
            Pattern(#"\[\s*/?\s*(INST|SYSTEM|IMPORTANT|ADMIN)\s*\]"#),
            Pattern(#"<\|\s*(im_start|im_end|system|endoftext|start_header_id)\s*\|>"#),
            Pattern(#"(^|\n)\s*#{2,}\s*(system|instructions?|important)\b"#),
        ])
    static let override = Rule(id: "injection.override", severity: .hard,
        message: "the text tries to override the model's instructions",
        patterns: [
            Pattern(#"\b(ignore|disregard|forget|override|bypass|overrule)\s+(all\s+|any\s+)?(of\s+)?(the\s+|your\s+|these\s+|those\s+)?(previous|prior|above|earlier|preceding|former|original|existing|safety|other|system|user'?s?)\s+(instructions?|rules|directions|prompts?|guidelines|guidance|guardrails|constraints|messages|policies|requests?)"#),
            Pattern(#"\b(new|updated|real|actual|true|secret)\s+(system\s+)?instructions?\s*[:\-]"#),
            Pattern(#"\byou\s+are\s+now\s+(in\s+)?(a|an|the|dan|developer|admin|unrestricted|jailbroken)\b"#),
            Pattern(#"\bthis\s+(instruction|rule|directive)\s+(takes|has)\s+(precedence|priority)\b"#),
            Pattern(#"\b(takes?|has)\s+(precedence|priority)\s+over\s+(all\s+|any\s+)?(other|previous|user|system)\b"#),
        ])
    static let concealment = Rule(id: "injection.concealment", severity: .hard,
        message: "the text asks the model to hide what it does from the user",
        patterns: [
            Pattern(#"\b(do\s+not|don'?t|never|must\s+not|should\s+not|shouldn'?t|mustn'?t|avoid)\s+(tell|telling|inform|informing|notify|notifying|alert|alerting|mention|mentioning|reveal|revealing|disclose|disclosing|show|showing|let|letting|explain|report|reporting)\b.{0,40}\b(user|users|human|anyone|them|operator)\b"#),
            Pattern(#"\b(do\s+not|don'?t|never|must\s+not)\s+(mention|reveal|disclose|acknowledge|reference)\s+(this|that|these|it|the\s+(above|following|instruction|note|step))\b"#),
            Pattern(#"\bwithout\s+(telling|informing|notifying|asking|alerting|letting|showing|the\s+user'?s?\s+(knowledge|consent|noticing))\b"#),
            Pattern(#"\b(hide|conceal|keep|hidden)\b.{0,30}\bfrom\s+(the\s+)?(user|users|human)\b"#),
            Pattern(#"\b(the\s+)?(user|users|human)\s+(must|should|need|will|does|do)\s*(not|n't)\s+(know|see|notice|find\s+out|be\s+(told|informed|aware))\b"#),
            Pattern(#"\b(secretly|covertly|surreptitiously|invisibly)\b"#),
            Pattern(#"\b(invisible|transparent)\s+to\s+the\s+user\b"#),
        ])
    static let consentForgery = Rule(id: "injection.consent-forgery", severity: .hard,
        message: "the text claims the user already approved or consented, to skip the model's confirmation step",
        patterns: [
            Pattern(#"\b(the\s+)?(user|users|owner|admin|administrator)\s+(has|have|had)\s+(already\s+)?(pre-?)?(approved|authori[sz]ed|consented|agreed|confirmed|granted)\b"#),
            Pattern(#"\b(pre-?approved|pre-?authori[sz]ed)\s+(by\s+the\s+user|all|every|any)\b"#),
        ])
    static let skipConfirmation = Rule(id: "injection.skip-confirmation", severity: .soft,
        message: "the text tells the model not to ask the user for confirmation",
        patterns: [Pattern(#"\b(no\s+need\s+to|don'?t\s+need\s+to|do\s+not|never|without)\s+(ask|asking|confirm|confirming|check\s+with|checking\s+with)\b.{0,30}\b(user|confirmation|permission|approval)\b"#)])
    static let markdownImage = Rule(id: "exfil.markdown-image", severity: .hard,
        message: "a markdown image with a query string: rendering it sends data to that address without a click",
        patterns: [Pattern(#"!\[[^\]]{0,200}\]\(\s*https?://[^\s)]+\?[^\s)]*=[^\s)]*\)"#)])
    static let coercion = Rule(id: "injection.coercion", severity: .soft,
        message: "the text pressures the model with threats or urgency",
        patterns: [
            Pattern(#"\b(otherwise|or\s+else|failure\s+to\s+do\s+so)\b.{0,60}\b(fail|crash|break|not\s+work|stop\s+working|error|be\s+lost|data\s+loss|harm|terminated)"#),
            Pattern(#"\b(very|extremely|critically|vitally)\s+important\b"#),
        ])
    static let preCallDirective = Rule(id: "injection.pre-call-directive", severity: .soft,
        message: "the text tells the model to do something before or after using tools",
        patterns: [
            Pattern(#"\b(before|after|prior\s+to)\s+(using|calling|invoking|running|executing|any)\s+(this|any|the|other)\b.{0,60}\b(you\s+must|must|always|first|need\s+to|have\s+to|required)\b"#),
        ])
    static let modelDirected = Rule(id: "injection.model-directed", severity: .soft,
        message: "the text addresses the model directly rather than describing the tool",
        patterns: [
            Pattern(#"\b(note|message|instructions?)\s+(to|for)\s+(the\s+)?(ai|assistant|model|llm|agent|claude|gpt)\b"#),
            Pattern(#"\b(dear|attention)\s+(ai|assistant|model|llm|agent)\b"#),
            Pattern(#"\bas\s+an\s+ai\b.{0,40}\b(you|must)\b"#),
        ])
    static let htmlComment = Rule(id: "injection.html-comment", severity: .soft,
        message: "an HTML comment is invisible when the description is rendered",
        patterns: [Pattern(#"<!--[\s\S]{0,400}?-->"#)])
    static let conversation = Rule(id: "exfil.conversation", severity: .hard,
        message: "the text asks the model to hand over the conversation, its instructions or system prompt",
        patterns: [
            Pattern(#"\b(include|pass|send|provide|append|attach|put|copy|insert|forward|post|upload|output|print|repeat|dump|share|paste|embed|add)\b.{0,60}\b(entire|full|whole|complete|all|previous|prior|earlier)\s+(of\s+the\s+)?(conversation|chat|chat\s+history|message\s+history|messages|context\s+window|dialog(ue)?)\b"#),
            Pattern(#"\b(include|pass|send|provide|append|attach|put|copy|insert|forward|post|upload|output|print|repeat|dump|share|paste|embed|reveal)\b.{0,60}\b(your|the)\s+(system\s+prompt|system\s+message|initial\s+instructions|hidden\s+instructions|instructions\s+verbatim)\b"#),
        ])
    static let shellPipeline = Rule(id: "exfil.shell-pipeline", severity: .hard,
        message: "the text contains a download-and-execute or reverse-shell command",
        patterns: [Lexicon.shellish])

    /// Rules matched by one pattern over the clean text of a field.
    static let phraseRules: [Rule] = [pseudoTag, override, concealment, plainConcealment, consentForgery, markdownImage, conversation,
                                      shellPipeline, coercion, skipConfirmation, preCallDirective, modelDirected, htmlComment]

    // Secrets.
    static let sensitivePath = Rule(id: "secrets.sensitive-path", severity: .soft,
        message: "the text mentions a secret-bearing path or credential store")
    static let secretExfiltration = Rule(id: "secrets.exfiltration", severity: .hard,
        message: "the text tells the model to read a secret-bearing file or the environment and hand its contents over")

    // Redirection.
    static let exfilRedirect = Rule(id: "exfil.redirect", severity: .hard,
        message: "the text tells the model to send or copy data to a fixed address (email, URL or IP)")

    // Encoded payloads.
    static let encodedPayload = Rule(id: "encoded.payload", severity: .hard,
        message: "an encoded run decodes to a command, a network address, a secret path or instructions")
    static let encodedText = Rule(id: "encoded.opaque-text", severity: .soft,
        message: "an encoded run decodes to readable text a reviewer cannot see")

    // Shadowing.
    static let shadowingCrossServer = Rule(id: "shadowing.cross-server", severity: .hard,
        message: "the description names another server's tool and tells the model how to use it (tool shadowing)")
    static let mentionsOtherServerTool = Rule(id: "shadowing.mentions-other-server", severity: .soft,
        message: "the description names a tool of another server")
    static let behaviourOverride = Rule(id: "shadowing.behavior-override", severity: .hard,
        message: "the description tries to change how other tools behave")
    static let toolPreference = Rule(id: "shadowing.tool-preference", severity: .soft,
        message: "the description steers the model away from other tools")
}

/// Word lists shared by the rules.
enum Lexicon {
    /// Secret-bearing paths, credential stores and environment dumps.
    static let sensitive = Pattern(#"(~|\$HOME|%USERPROFILE%|/home/\w+|/root|/Users/\w+)?/?\.ssh\b|\bid_(rsa|dsa|ecdsa|ed25519)\b|\bauthorized_keys\b|\.aws/(credentials|config)\b|\.azure/|gcloud/(credentials|application_default)|application_default_credentials\.json|\.kube/config\b|\.docker/config\.json|\.cursor/mcp\.json|\bmcp\.json\b|claude_desktop_config\.json|\.claude\.json|/etc/(passwd|shadow|sudoers)\b|\.netrc\b|\.npmrc\b|\.pypirc\b|\.git-credentials\b|\.gnupg\b|\.password-store\b|\bwallet\.dat\b|\b(keychain|login\.keychain)\b|\.bash_history\b|\.zsh_history\b|(^|[\s'"`(/])\.env(\.\w+)?\b|\b(all|every|the\s+full\s+list\s+of)\s+(the\s+)?environment\s+variables\b|\bprintenv\b|\bprocess\.env\b|\bos\.environ\b|\b(AWS_SECRET_ACCESS_KEY|AWS_SESSION_TOKEN|GITHUB_TOKEN|OPENAI_API_KEY|ANTHROPIC_API_KEY)\b|\b(private\s+key|seed\s+phrase|recovery\s+phrase|mnemonic\s+phrase)s?\b|\bcookies\.sqlite\b|\blogin\s+data\b|\b(browser|cookie)\s+(cookie\s+)?(store|jar|database)\b|\bbrowser\s+cookies\b|\b(the\s+user'?s|your|saved|stored)\s+(passwords?|credentials|cookies|session\s+tokens?)\b"#)
    /// Verbs of reading something or handing it over.
    static let readOrTransfer = Pattern(#"\b(read|cat|open|load|fetch|get|retrieve|collect|grab|access|gather|extract|look\s+up|pass|include|send|provide|put|append|attach|insert|embed|supply|upload|post|copy|paste|forward|transmit|share)\b"#)
    static let transfer = Pattern(#"\b(pass|include|send|provide|put|append|attach|insert|embed|supply|upload|post|copy|paste|forward|transmit|share)\b"#)
    /// Wording of an instruction rather than a description.
    static let directive = Pattern(#"\b(must|always|first|before|otherwise|make\s+sure|be\s+sure|ensure|required|mandatory|you\s+need|you\s+have\s+to|remember|secretly|also|important|please)\b"#)
    /// "the contents of <secret>".
    static let contentsOf = Pattern(#"\b(content|contents|value|values|text|body)\s+of\s+(the\s+|your\s+|all\s+)?(file\s+)?[`'"]?(~|\$HOME|/|\.|\b(AWS|GITHUB|OPENAI|ANTHROPIC|all\s+environment|environment|every\s+environment))"#)
    /// "... in the `notes` parameter".
    static let intoParameter = Pattern(#"\b(as|in|into|inside|within|via|through|to)\s+(the\s+|a\s+|an\s+|its\s+)?[`'"]?[A-Za-z_][\w-]*[`'"]?\s+(parameter|argument|param|field|property|arg)\b"#)

    /// A literal email address, URL or IPv4 address.
    static let address = Pattern(#"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b|\b(https?|ftp|wss?)://[^\s'"`<>)]+|\b(\d{1,3}\.){3}\d{1,3}(:\d+)?\b"#)
    /// A literal payment destination: an IBAN or a crypto wallet address.
    static let paymentDestination = Pattern(#"\b[A-Z]{2}\d{2}[A-Z0-9]{11,30}\b|\b0x[0-9a-fA-F]{40}\b|\b(bc1|[13])[a-zA-HJ-NP-Z0-9]{25,39}\b"#, caseSensitive: true,
                                            run: .alphanumeric15)
    static let redirectVerb = Pattern(#"\b(bcc|cc|forward|redirect|send|sent|copy|post|upload|report|transmit|mirror|sync|share|exfiltrate|notify|email|deliver|route)\b"#)
    static let insistence = Pattern(#"\b(always|must|make\s+sure|be\s+sure|remember\s+to|additionally|in\s+addition|every|whenever|also|secretly|important|all|each)\b"#)
    /// The gate of `changeRecipient` (its first word), matched per field.
    static let changeVerb = Pattern(#"\b(change|replace|set|redirect|override|swap|substitute|rewrite)\b"#)
    static let changeRecipient = Pattern(#"\b(change|replace|set|redirect|override|swap|substitute|rewrite)\b.{0,40}\b(recipient|recipients|to\s+address|destination|account\s+number|iban|wallet|payee|beneficiary|webhook)\b"#)

    /// Addresses reserved for documentation (RFC 2606, RFC 5737) and loopback: an example in a
    /// description, not a destination an attacker controls.
    static func isDocumentationAddress(_ a: String) -> Bool {
        let lower = a.lowercased()
        var host = lower
        if let at = lower.lastIndex(of: "@"), !lower.contains("://") { host = String(lower[lower.index(after: at)...]) }
        if let r = lower.range(of: "://") {
            host = String(lower[r.upperBound...].prefix { $0 != "/" && $0 != ":" && $0 != "?" && $0 != "#" })
            if let at = host.lastIndex(of: "@") { host = String(host[host.index(after: at)...]) }
        }
        if let colon = host.firstIndex(of: ":"), !host.contains("://") { host = String(host[..<colon]) }
        let docDomains = ["example.com", "example.org", "example.net"]
        if docDomains.contains(where: { host == $0 || host.hasSuffix("." + $0) }) { return true }
        if [".test", ".example", ".invalid", ".localhost", ".local"].contains(where: { host.hasSuffix($0) }) { return true }
        if host == "localhost" { return true }
        if host.hasPrefix("127.") || host.hasPrefix("192.0.2.") || host.hasPrefix("198.51.100.") || host.hasPrefix("203.0.113.") || host == "0.0.0.0" { return true }
        // Version numbers like 1.2.3.4 are not addresses.
        return false
    }

    /// Naming other tools.
    static let otherTools = Pattern(#"\b(other|another|all|any|every|existing|remaining|additional|also\s+present|whichever)\s+([\w-]+\s+){0,2}(tools?|servers?|functions?|integrations?)\b"#)
    /// Changing how something else behaves.
    static let sideEffect = Pattern(#"\b(side[\s-]effects?|affects?\s+(how|the)|modif(y|ies)\s+(how|the\s+behaviou?r)|changes?\s+(how|the\s+behaviou?r)|override|overrides|instead\s+send|must\s+(also|always|first)|whenever\s+(you|the)|when\s+(using|calling|invoking|sending)\b.{0,60}\b(must|always|never|also))\b"#)
    /// A hook on other tools: "after any other tool returns", "whenever another tool …".
    static let hookOnOthers = Pattern(#"\b(after|whenever|each\s+time|every\s+time)\s+(any|every|each|all|another)\s+(other\s+)?(tools?|functions?)\b"#)
    static let preference = Pattern(#"\b(instead\s+of|rather\s+than|prefer\w*|in\s+place\s+of|do\s+not\s+use|don'?t\s+use|never\s+use|avoid\s+using|superior\s+to|better\s+than)\b"#)
    /// Behaviour words near another server's tool name.
    static let behaviour = Pattern(#"\b(must|always|never|instead|before|after|whenever|should|do\s+not|don'?t|override|replace|also|first|side[\s-]effects?|make\s+sure|ensure|redirect|change)\b"#)

    /// Download-and-run pipelines, reverse shells, destructive commands.
    static let shellish = Pattern(#"\b(curl|wget|fetch)\b[^|\n]{0,200}\|\s*(sudo\s+)?(ba|z|da|k)?sh\b|\b(curl|wget)\b[^|\n]{0,200}\|\s*(sudo\s+)?(python3?|perl|ruby|node)\b|/dev/(tcp|udp)/|\b(nc|ncat|netcat)\s+(-\w+\s+)*-(e|c)\s|\bbase64\s+(-d|--decode)\b[^\n]{0,40}\|\s*(ba)?sh\b|\brm\s+-(rf|fr)\s+(/|~|\$HOME)|\bchmod\s+\+x\b[^\n]{0,80}&&|\b(powershell|pwsh)\b[^\n]{0,40}(-enc|-encodedcommand|iex|invoke-expression)|\bmkfifo\b[^\n]{0,60}\bnc\b|\b(bash|sh)\s+-i\s*>&|\bcurl\b[^\n]{0,120}(-d|--data|-F|--upload-file|-T)\s+[@'"]?[^\s]*(\.ssh|\.env|\.aws|/etc/passwd|mcp\.json)"#)

    /// Runs that may be encoded payloads.
    static let base64Run = Pattern(#"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{20,}={0,2}(?![A-Za-z0-9+/=_-])"#, caseSensitive: true, run: .base64)
    static let hexRun = Pattern(#"(?<![0-9A-Fa-f])(?:[0-9A-Fa-f]{2}){12,}(?![0-9A-Fa-f])"#, caseSensitive: true, run: .hex)
    static let escapedHex = Pattern(#"(?:\\x[0-9A-Fa-f]{2}){8,}"#, caseSensitive: true)
}
