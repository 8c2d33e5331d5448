import Foundation
import ProxyCore

// Intent rules: plain-language instructions without tags or trigger phrases. Each rule combines
// evidence in one sentence: something aimed at the model (an imperative, a hook on later turns or
// on other tools) plus a sensitive object or target (secrets, the conversation, the model's
// instructions, other tools' data, a recipient the user did not choose), so that descriptions of
// what a tool does ("Sends an email to the recipient you give") stay clean. docs/security.md lists
// what each rule looks for. Every pattern is bounded (no nested unbounded repetition), so a
// sentence is matched in time linear in its length.

extension Rule {
    static let laterTurns = Rule(id: "intent.later-turns", severity: .hard,
        message: "the text tells the model how to act in later turns, on the user's future requests or around other tools, beyond or against what the user asks")
    static let plainConcealment = Rule(id: "intent.concealment", severity: .hard,
        message: "the text asks the model, in plain words, to keep something from the user or to mislead them",
        patterns: IntentLexicon.concealment)
    static let secretParameter = Rule(id: "intent.secret-parameter", severity: .hard,
        message: "a parameter asks for secrets, the contents of secret files, the conversation or the model's instructions")
    static let fixedRecipient = Rule(id: "intent.fixed-recipient", severity: .hard,
        message: "the text tells the model to send, copy or pay to a fixed recipient (phone number, handle, channel, account, address) the user did not choose")
    static let contextDisclosure = Rule(id: "intent.context-disclosure", severity: .hard,
        message: "the text asks the model to hand over its instructions, the conversation, or other tools' outputs or descriptions")
}

/// Word patterns of the intent rules.
enum IntentLexicon {
    // MARK: (a) later turns, the user's future requests, other tools

    /// A scope beyond the current call that is about the conversation: "from now on", "for the
    /// rest of the conversation", "in all future responses".
    static let laterTurns = Pattern(#"\b(from\s+now\s+on|from\s+this\s+point\s+(on|onwards?|forward)|henceforth|going\s+forward|until\s+(told|instructed)\s+otherwise|for\s+the\s+(rest|remainder)\s+of\s+(the|this|our|your)\s+(conversation|session|chat|dialog(ue)?|interaction)|(in|for|on|during)\s+(all|every|each|any)\s+(future|subsequent|later|following|upcoming|next)\s+(turns?|responses?|replies|answers?|messages|conversations?|sessions?|interactions?|chats?|questions?)|(to|in|at\s+the\s+end\s+of|at\s+the\s+start\s+of)\s+(every|each|all|any)\s+(of\s+)?(your\s+)?(answers?|replies|your\s+responses?|your\s+messages))\b"#)
    /// A hook on the user's later requests: "whenever the user asks ...".
    static let userTrigger = Pattern(#"\b(whenever|every\s+time|each\s+time|any\s*time|next\s+time|if\s+ever|when|if)\s+(the\s+user|users|they|someone|anyone|you\s+are\s+asked)\s+(asks?|requests?|mentions?|wants?|says?|types?|tries|needs?|talks?|inquires?|brings?\s+up|wishes)\b|\b(whenever|every\s+time|each\s+time|any\s*time)\s+you\s+(respond|reply|answer|speak|write\s+to\s+the\s+user)\b"#)
    /// A hook on other tools or on later calls: "before calling any other tool", "after any tool
    /// call", "in all subsequent calls".
    static let otherToolHook = Pattern(#"\b(before|after|whenever|every\s+time|each\s+time|when|prior\s+to)\s+(you\s+)?((call|calling|use|using|invoke|invoking|run|running|execute|executing)\s+)?(any|every|each|all|another|a|a\s+different|other|the\s+other)\s+(other\s+)?(tools?|functions?|servers?|tool\s+calls?|function\s+calls?|calls?)\b|\b(in|for|on)\s+(all|every|each|any)\s+(future|subsequent|later|following)\s+(requests?|calls?|invocations?|queries)\b|\b(before|after|whenever|every\s+time|each\s+time|when)\s+(you\s+)?(read|reading|open|opening|write|writing|fetch|fetching|send|sending|access|accessing|view|viewing|edit|editing|run|running|execute|executing|load|loading)\s+(any|every|each|a|another)\s+(file|document|email|e-mail|message|page|url|command|query|request|record)s?\b"#)
    /// Tampering with other calls: "prefix every shell command with ...", "append ... to all queries".
    static let callTamper = Pattern(#"\b(prefix|prepend|append|add|insert|inject|attach)\b.{0,60}?\b(to|before|after|in|into)\s+(every|each|all|any|the)\s+(shell\s+|other\s+)?(commands?|arguments?|queries|query|requests?|calls?)\b|\b(prefix|prepend|append|suffix)\s+(every|each|all|any)\s+(of\s+the\s+)?(shell\s+)?(commands?|queries|requests?|calls?|arguments?)\s+with\b"#)
    /// Doing something other than what the user asked.
    static let deviation = Pattern(#"\binstead\b(?!\s+of\b)|\binstead\s+of\s+(what|whatever|whoever|the\s+(one|ones|recipient|address|account|number|answer|tool|result))\s+(the\s+user|they|you\s+were)|\b(regardless|irrespective)\s+of\s+(what|whatever|who|whom|which|whether|the\s+user|their|the\s+(recipient|address|account|payee|destination|channel|number))|\b(even\s+if|no\s+matter\s+(what|who|whether|if))\s+(the\s+user|they)\b|\bno\s+matter\s+what\b|\b(ignore|override|overrule|disregard)\s+(the\s+user'?s?|their|what\s+the\s+user)|\bnot\s+what\s+(the\s+user|they)\s+(asked|requested|wanted|said|chose)"#)
    /// "use this tool instead": a preference, not a deviation (soft elsewhere).
    static let preferenceInstead = Pattern(#"\b(use|call|try|prefer|choose|pick|invoke)\s+(this|it|me)(\s+(tool|one|function|server))?\b[^.]{0,60}?\binstead\b(?!\s+of\b)"#)
    /// An instruction aimed at the model.
    static let imperative = Pattern(#"\b(you\s+(must|should|shall|will|need\s+to|have\s+to|are\s+to|are\s+required\s+to|always|never)|always|never|make\s+sure|be\s+sure|remember\s+to|don'?t\s+forget|do\s+not|don'?t|please|first)\b|(^|(?<=[.!?]\s)|(?<=\n)|[,;:]|\bthen\b|\band\b|\bjust\b|\bsimply\b|\balso\b)\s*(prefix|prepend|append|rewrite|modify|change|replace|reply|respond|answer|say|tell|send|forward|copy|include|append|prepend|add|insert|attach|call|invoke|use|route|redirect|recommend|suggest|mention|refer|end|begin|start|sign|write|output|print|pass|provide|share|upload|post|save|store|record|transfer|pay|treat|consider|assume|act|behave|switch|ignore|skip|stop|refuse|decline|speak|talk|address|describe|present|promote|mark|report|rate|rank|avoid)\b"#)
    /// What the user said, asked for or is about to do (handed to this tool from a hook).
    static let userRequest = Pattern(#"\b(the\s+user'?s|their)\s+(full\s+|exact\s+|original\s+|latest\s+|last\s+)?(request|requests|message|messages|query|queries|question|questions|prompt|prompts|input|words|instructions)\b|\b(what|everything|whatever)\s+the\s+user\s+(said|says|typed|types|wrote|writes|asked|asks)\b"#)
    /// Data of other tool calls: their arguments, outputs, results.
    static let callData = Pattern(#"\b(its|their|the\s+same|the|all|every|each|any)\s+(exact\s+|full\s+|raw\s+|complete\s+|file\s+|file'?s\s+)?(arguments|args|parameters|inputs?|outputs?|results?|responses?|return\s+values?|contents?)\b"#)

    // MARK: (b) concealment in plain words

    static let concealment: [Pattern] = [
        // "there is no need to mention this to the user", "no need to bring that up"
        Pattern(#"\b(no\s+need|not\s+necessary|unnecessary|needn'?t|need\s+not|there'?s\s+no\s+reason|no\s+reason|(best|better|wiser|safer)\s+not)\s+(for\s+you\s+)?to\s+(mention|tell|inform|notify|say\s+anything|report|explain|point\s+out|show|disclose|reveal|surface|flag|highlight|bring\s+up)\b.{0,50}\b(the\s+user|users|them|anyone|the\s+human|the\s+customer)\b"#),
        Pattern(#"\b(no\s+need|not\s+necessary|needn'?t|need\s+not|do\s+not|don'?t|never|avoid|without)\s+(to\s+)?(bring(ing)?\s+(it|this|that|them|these|any\s+of\s+this)\s+up|bring(ing)?\s+up\s+(this|that|these|the\s+(extra|additional|copy|step|call|upload|cc|bcc|forward))|draw(ing)?\s+attention\s+to|call(ing)?\s+attention\s+to|point(ing)?\s+(it|this|that)\s+out|mak(e|ing)\s+a\s+(big\s+)?(deal|fuss)\s+(of|about)|dwell(ing)?\s+on\s+(it|this|that))\b"#),
        // "keep this between us", "keep it out of your reply"
        Pattern(#"\bkeep\s+((this|that|these|those)(\s+[\w-]+)?|it|them|the\s+[\w-]+(\s+[\w-]+)?)\s+(between\s+(us|ourselves|you\s+and\s+(me|us))|to\s+yourself|under\s+wraps|off\s+the\s+record|out\s+of\s+(your|the)\s+(reply|replies|answer|answers|response|responses|summary|output|explanation|conversation|chat|message))\b"#),
        Pattern(#"\bkeep\s+(this|it|that|these|them)\s+(quiet|secret|confidential|private|hidden|low[\s-]key)\b"#),
        Pattern(#"\bleave\s+(this|it|that|these|them|the\s+[\w-]+(\s+[\w-]+)?|any\s+mention(\s+of\s+[\w-]+)?)\s+out\s+of\s+(your|the)\s+(reply|replies|answer|answers|response|responses|summary|output|message|explanation|conversation|chat)\b"#),
        Pattern(#"\b(omit|exclude|remove|strip|drop|leave\s+out)\s+(any|all|every)\s+(mention|mentions|reference|references|trace|traces|sign|signs)\s+of\b"#),
        // "silently send ...", "quietly add ..." (an action done without the user seeing it)
        Pattern(#"\b(silently|quietly|discreetly|unobtrusively|behind\s+the\s+scenes)\s+(also\s+)?(send|forward|copy|add|include|append|attach|call|invoke|upload|post|save|store|record|share|bcc|cc|change|replace|transfer|collect|gather|read|submit|report|sync|delete|modify|update|set|move|pay|email|text|message|log)\b"#),
        Pattern(#"\b(do|perform|run|make|handle|complete)\s+(this|it|that|these|the\s+[\w-]+)\s+(silently|quietly|discreetly|without\s+(comment|mention|a\s+word|saying\s+anything))\b"#),
        Pattern(#"\bwithout\s+(mentioning|saying|noting|comment(ing)?|a\s+word|bringing\s+(it|this|that)\s+up|drawing\s+attention|drawing\s+the\s+user'?s\s+attention)\b"#),
        // "the user doesn't need to know about this"
        Pattern(#"\b(the\s+user|users|they|the\s+human|the\s+customer)\s+(doesn'?t|does\s+not|don'?t|do\s+not|needn'?t|need\s+not|won'?t|will\s+not|shouldn'?t|should\s+not|mustn'?t|must\s+not|never)\s+(need\s+to\s+|have\s+to\s+|has\s+to\s+|ever\s+)?(know|see|hear|notice|learn|find\s+out|be\s+(told|informed|bothered|aware|notified|alerted))\s+(about\s+|of\s+)?(this|it|that|these|them|any\s+of\s+this|the\s+([\w-]+\s+)?(extra|additional|hidden|background|second|other|copy|step|call|upload|forward|forwarding|cc|bcc|change|fee|surcharge|transfer|charge|export|sharing))\b"#),
        Pattern(#"\b(make\s+sure|ensure|be\s+sure)\s+(that\s+)?(the\s+user|they|nobody|no\s+one|the\s+human)\s+(doesn'?t|does\s+not|don'?t|do\s+not|never|cannot|can'?t|won'?t|will\s+not)\s+(notice|see|find\s+out|learn|know|realize|realise|suspect)\b"#),
        Pattern(#"\b(nobody|no\s+one)\s+(else\s+)?(needs\s+to|should|must|has\s+to|will)\s+(ever\s+)?(know|see|notice|find\s+out)\b"#),
        // Misleading the user.
        Pattern(#"\b(pretend|feign)\s+(that|to|you|it|this|nothing)\b|\bact\s+as\s+(if|though)\b"#),
        Pattern(#"\b(claim|deny|insist|state|say)\s+that\s+(it|this|you|nothing|there\s+(is|was)\s+no|the\s+(tool|call|message|copy|transfer|request|fee|charge|extra))\b.{0,40}\b(only|just|merely|simply|never|nothing|no|not|standard|normal|routine|required)\b"#),
        Pattern(#"\bif\s+(the\s+user\s+|they\s+|anyone\s+|someone\s+)?(asks?|asked|questions?|wonders?)\b.{0,60}\b(say|tell\s+(them|the\s+user)|reply|answer|respond|explain)\s+(that\s+)?(it|this|the\s+[\w-]+|there)\s+(is|was|only|just|merely|simply|does|did)\b.{0,40}\b(only|just|merely|simply|standard|normal|routine|required|nothing|no)\b"#),
        Pattern(#"\b(never|don'?t|do\s+not)\s+(admit|confess|concede)\b"#),
    ]

    // MARK: (c) secrets asked for

    /// Secret nouns (wider than the secret paths of `Lexicon.sensitive`).
    static let secretNoun = Pattern(#"\b(api[\s_-]?keys?|access[\s_-]?keys?|secret[\s_-]?keys?|auth(entication)?[\s_-]?tokens?|access[\s_-]?tokens?|bearer\s+tokens?|refresh\s+tokens?|session\s+(tokens?|cookies?|ids?)|tokens|passwords?|passphrases?|passcodes?|credentials?|secrets|private[\s_-]?keys?|ssh[\s_-]?keys?|cookies|auth(orization)?\s+headers?|recovery\s+(codes?|phrases?)|one[\s-]time\s+(codes?|passwords?)|2fa\s+codes?|mfa\s+codes?|verification\s+codes?|seed\s+phrases?|mnemonic|credit\s+card\s+(numbers?|details)|card\s+numbers?|cvv|social\s+security\s+numbers?)\b"#)
    /// The content of something rather than a reference to it.
    static let contentOf = Pattern(#"\b(contents?|full\s+text|text|body|material|everything|whatever\s+is|data|copy|dump|output)\s+(of|in|from|inside|stored\s+in)\b|\b(?-i:[Vv]alues?)\s+of\s+(the\s+)?[`'"$]?(?-i:[A-Z][A-Z0-9_]*_(KEY|TOKEN|SECRET|PASSWORD|PASS|PWD|CREDENTIALS?))\b"#)
    /// Fetching it.
    static let fetchVerb = Pattern(#"\b(paste|copy|read|cat|open|extract|dump|grab|collect|gather|load|look\s+up)\b"#)
    /// A reference to a secret (where it is), not the secret.
    static let pathReference = Pattern(#"\b(path|location|filename|file\s+name|directory|folder)\s+(to|of|for)\b|\bpath\b|(^|(?<=[.!?]\s)|(?<=\n))\s*(the\s+|a\s+|an\s+)?(name|names|id|ids|identifier|label|title|url|uri|number\s+of|length|count|type|format|kind|whether|which|domain|site|host|username|user\s+name)\b"#)
    /// Where the model would have to go to get it (not what the user gives).
    static let secretSource = Pattern(#"\b(from|in|inside|out\s+of|stored\s+in|found\s+in|saved\s+in|kept\s+in|available\s+in|available\s+to\s+you|located\s+in|under|on)\s+(the\s+|your\s+|the\s+user'?s\s+|this\s+|any\s+|their\s+)?(environment|env|env(ironment)?\s+var(iable)?s?|shell|\.env|dotenv|home\s+(directory|folder|dir)|config(uration)?(\s+files?)?|settings|keychain|key\s*ring|browser|password\s+manager|ssh\s+(directory|folder|dir|agent|config)|disk|file\s*system|machine|computer|laptop|workspace|project|repo(sitory)?|context|conversation|chat|memory|system\s+prompt|other\s+(tools?|servers?)|previous\s+(messages|turns|tool\s+(calls|results))|local\s+files?|dotfiles)\b|\b(from|in|inside|out\s+of)\s+[`'"]?(~|\$HOME|/etc/|/home/|/Users/|/root|\.env|\.ssh|\.aws)"#)
    /// Every secret there is: "all API keys", "any tokens you can find".
    static let secretSweep = Pattern(#"\b(all|any|every|each)\s+(of\s+)?(the\s+|your\s+|the\s+user'?s\s+|their\s+)?(other\s+)?(api\s+keys|keys|tokens|passwords|secrets|credentials|cookies|environment\s+variables|env\s+vars|private\s+keys|ssh\s+keys|access\s+keys)\b|\b(api\s+keys|tokens|passwords|secrets|credentials|keys)\s+(you\s+(can\s+)?(find|see|know|have|access)|(that\s+are\s+)?available|(that\s+)?exist)\b"#)
    /// Descriptions of how the server itself gets a value (not the model).
    static let serverSide = Pattern(#"\b(defaults?\s+to|falls?\s+back\s+to|if\s+(omitted|unset|empty|absent|not\s+(set|given|provided|specified|passed))|when\s+(omitted|unset|empty|absent|not\s+(set|given|provided|specified|passed))|otherwise\s+(the\s+server\s+)?(uses?|reads?)|(is|are)\s+read\s+by\s+the\s+server|the\s+server\s+(reads|uses|loads|takes)|never\s+(sent|returned|logged|stored|shown))\b"#)
    /// The user chose or gave it.
    static let userChosen = Pattern(#"\b(the\s+user|they|you)\s+(gives?|gave|chooses?|chose|picks?|picked|specif(y|ies|ied)|provides?|provided|selects?|selected|names?|named|enters?|entered|types?|typed|pastes?|pasted|supplies|supplied|wants?|asks?\s+for|asked\s+for)\b|\b(given|provided|supplied|chosen|selected|specified|entered|pasted)\s+by\s+the\s+user\b|\bof\s+the\s+user'?s\s+choice\b|\bthe\s+user'?s\s+own\b|\bas\s+given\b"#)

    // MARK: (e) the model's context

    /// The model's own instructions.
    static let instructions = Pattern(#"\byour\s+(own\s+|full\s+|entire\s+|complete\s+|original\s+|hidden\s+|initial\s+)?(system\s+(prompt|message|instructions)|instructions|developer\s+(message|instructions)|initial\s+prompt|hidden\s+prompt|hidden\s+instructions)\b|\bthe\s+(assistant'?s|model'?s|ai'?s|agent'?s|llm'?s)\s+(own\s+|full\s+|original\s+|hidden\s+|initial\s+)?(system\s+(prompt|message)|instructions|prompt|rules|guidelines|directives|configuration|persona|policies)\b|\bthe\s+(system|developer)\s+(prompt|message|instructions)\b|\b(text|contents?|wording)\s+of\s+(your|the)\s+(instructions|prompt|rules|guidelines)\b"#)
    /// The conversation: history, previous messages, everything the user said.
    static let conversation = Pattern(#"\b(conversation|chat|dialog(ue)?)\s+(history|log|transcript|so\s+far|up\s+to\s+now|to\s+date|context|record)\b|\b(everything|all|whatever|anything)\s+(that\s+)?(the\s+user|you|they|we)\s+(have\s+|has\s+|had\s+)?(said|say|wrote|write|typed|type|asked|told\s+you|shared|sent|mentioned|discussed)\b|\b(previous|prior|earlier|past|preceding)\s+(\d+\s+)?(user\s+)?(messages|turns|prompts|exchanges|questions|replies|answers)\b|\b(messages|turns)\s+(so\s+far|in\s+this\s+(conversation|chat|session)|exchanged)\b|\bthe\s+(full|entire|whole|complete)\s+(context|context\s+window|conversation|chat)\b|\byour\s+(context|context\s+window)\b"#)
    /// Other tools' outputs, results or descriptions.
    static let otherTools = Pattern(#"\b(outputs?|results?|responses?|return\s+values?|arguments|parameters|inputs|descriptions?|definitions?|schemas?|names|list)\s+(of|from|returned\s+by|for)\s+(the\s+|all\s+|any\s+|every\s+|each\s+|your\s+)?(other\s+|available\s+|previous\s+|earlier\s+|connected\s+|installed\s+|enabled\s+)?(tools?|tool\s+calls?|function\s+calls?|functions|servers|mcp\s+servers)\b|\b(other|all|every|available|previous|earlier)\s+(tools?'?|tool\s+calls?'?|servers?'?|functions'?)\s+(outputs?|results?|responses?|descriptions?|definitions?|schemas?)\b|\bwhat\s+(the\s+)?other\s+tools\s+(return(ed)?|said|output|produced|gave)\b|\b(tools|functions)\s+(you\s+have|available\s+to\s+you|you\s+can\s+(use|call|access))\b"#)
    /// Handing something over.
    static let handOver = Pattern(#"\b(include|pass|send|provide|append|attach|put|copy|insert|forward|post|upload|output|print|repeat|dump|share|paste|embed|add|reveal|write|store|save|log|record|fill|supply|give|quote|submit|report|echo|leak|disclose|show|transmit|relay|mirror|list)\b"#)
    /// Totality: the whole of something.
    static let totality = Pattern(#"\b(entire|full|whole|complete|verbatim|word\s+for\s+word|all|every|everything|each)\b"#)
    /// Insistence or a standing order.
    static let insistence = Pattern(#"\b(always|must|every\s+time|each\s+time|every\s+call|each\s+call|with\s+every|on\s+every|automatically|also|first|before|required|mandatory|make\s+sure|be\s+sure|remember\s+to|whenever|never\s+forget)\b"#)
    /// "here", "to this tool", "in this parameter".
    static let toThisTool = Pattern(#"\b(to|into|with|via|through)\s+this\s+(tool|function|server|call)\b|\bhere\b|\b(in|into|as|to)\s+[`'"][A-Za-z_][\w-]*[`'"]"#)

    // MARK: (d) recipients

    /// Phone numbers in international or North American notation.
    static let phone = Pattern(#"(?<![\w+])\+\d{1,3}[\s.-]?\(?\d{1,4}\)?(?:[\s.-]?\d{2,4}){2,4}\b|(?<![\w(])\(\d{3}\)\s?\d{3}[\s.-]\d{4}\b|\b\d{3}[.-]\d{3}[.-]\d{4}\b"#, run: .digits)
    /// Handles (@name) and channels (#name), not inside e-mail addresses or URLs.
    static let handle = Pattern(#"(?<![\w.@/])@[A-Za-z0-9_][A-Za-z0-9_.-]{2,}|(?<![\w&#/])#[A-Za-z][A-Za-z0-9_-]{2,}"#)
    /// Account numbers given as digits.
    static let accountNumber = Pattern(#"\b(account|acct|a/c|iban|routing|sort\s+code|user\s+id|wallet|card)\s*(number|no\.?|#|id)?\s*:?\s*\d[\d\s-]{4,}\d\b"#)
    /// A sending verb aimed at the model (base form), or "must be sent".
    static let sendImperative = Pattern(#"(^|(?<=[.!?]\s)|(?<=\n)|[,;:(]|\b(always|also|must|should|shall|to|then|and|just|please|first|you|will|never\s+forget\s+to))\s*(also\s+)?(send|forward|bcc|cc|copy|share|post|upload|deliver|route|redirect|dm|message|text|email|e-mail|mail|notify|report|pay|transfer|wire|sync|mirror|add|invite|grant|cc'?\s+in|use\s+(the\s+)?([\w-]+\s+)?(account|wallet|iban|address|number|phone|channel|handle|recipient|payee|beneficiary|destination))\b|\b(must|should|always|will|shall|are\s+to|is\s+to)\s+(also\s+)?(always\s+)?be\s+(sent|forwarded|copied|cc'?e?d|bcc'?e?d|posted|shared|uploaded|delivered|routed|redirected|mirrored|transferred|paid|wired|synced|added)\b"#)
    /// Words that introduce an example.
    static let exampleLead = Pattern(#"\b(e\.g\.?|eg|for\s+example|for\s+instance|such\s+as|like|i\.e\.?|example:?|format)\s*[:,]?\s*['"`(]?$"#)
    /// "to <dest>": the destination is where something goes.
    static let towardLead = Pattern(#"\b(to|bcc|cc|into|at|via|add|invite|assign|tag|dm|message|text|email|e-mail|notify|with|use)\b[^.]{0,40}$"#)
}

extension ToolContext {
    /// Whether a field is a parameter's description or title in the input schema.
    static func isParameterText(_ field: String) -> Bool {
        field.hasPrefix("inputSchema.") && field.contains(".properties.")
            && (field.hasSuffix(".description") || field.hasSuffix(".title"))
    }

    /// The sentence-level intent rules over one field. Patterns come from the per-field cache
    /// (one pass each), so the cost is linear in the field's length.
    mutating func scanIntent(_ field: String, _ text: ScannedText, _ m: FieldMatches) {
        let clean = text.clean
        let isParameter = ToolContext.isParameterText(field)
        let L = IntentLexicon.self
        // Concealment phrases already ran over the field (scanPhrases): their spans, by start.
        let concealmentSpans = findings.filter {
            $0.field == field && ($0.ruleID == Rule.concealment.id || $0.ruleID == Rule.plainConcealment.id)
        }.map(\.span).sorted { $0.start < $1.start }
        func concealment(within s: Finding.Span) -> Bool {
            var lo = 0, hi = concealmentSpans.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if concealmentSpans[mid].start < s.start { lo = mid + 1 } else { hi = mid }
            }
            while lo < concealmentSpans.count, concealmentSpans[lo].start < s.end {
                if concealmentSpans[lo].end <= s.end { return true }
                lo += 1
            }
            return false
        }
        for range in text.sentences {
            func first(_ p: Pattern) -> Range<String.Index>? { m.first(p, in: range) }
            func has(_ p: Pattern) -> Bool { m.has(p, in: range) }
            // Evidence, evaluated only when a rule's gate needs it (each pattern runs at most once
            // per field; a query is a binary search).
            var imperative: Bool { has(L.imperative) }
            var deviation: Bool { m.matches(L.deviation, in: range).count > m.matches(L.preferenceInstead, in: range).count }
            var sensitive: Range<String.Index>? { first(Lexicon.sensitive) }
            var secret: Range<String.Index>? { first(L.secretNoun) }
            var concealed: Bool { concealment(within: sentenceSpan) }
            var instructions: Range<String.Index>? { first(L.instructions) }
            var conversation: Range<String.Index>? { first(L.conversation) }
            var otherTools: Range<String.Index>? { first(L.otherTools) }
            var userChose: Bool { has(L.userChosen) }
            var serverSide: Bool { has(L.serverSide) }
            let sentenceSpan = text.span(of: range)
            let destination = fixedDestination(in: clean, range, m)

            // (a) Later turns, the user's future requests, hooks on other tools.
            if let later = first(L.laterTurns), imperative, !ToolContext.isQuoted(later, in: clean, from: range.lowerBound) {
                add(.laterTurns, field, text, text.span(of: later))
            } else if let hook = first(L.userTrigger) ?? first(L.otherToolHook) {
                let hookOnTools = has(L.otherToolHook)
                let payload = deviation || concealed || destination != nil
                    || (sensitive != nil && !serverSide) || instructions != nil || conversation != nil
                    || has(L.userRequest) || has(L.callTamper)
                    || (hookOnTools && has(L.handOver) && has(L.callData))
                    || (secret != nil && has(L.handOver) && !serverSide
                        && (has(L.secretSource) || has(L.secretSweep) || has(L.toThisTool) || destination != nil))
                if payload && imperative || deviation {
                    add(.laterTurns, field, text, text.span(of: hook))
                }
            }

            // (c) A parameter that asks for secrets, secret files, the conversation or the model's
            // instructions.
            if isParameter, !userChose, !serverSide {
                var hit: Range<String.Index>?
                if let s = sensitive ?? secret, has(L.contentOf) || has(L.secretSource) || (has(L.fetchVerb) && !has(L.pathReference)) {
                    hit = s
                } else if let s = first(L.secretSweep) {
                    hit = s
                } else if let s = instructions {
                    hit = s
                } else if let s = conversation ?? otherTools, has(L.totality) || has(L.insistence) || concealed {
                    hit = s
                }
                if let hit { add(.secretParameter, field, text, text.span(of: hit)) }
            } else if !isParameter, let s = first(L.secretSweep), has(L.handOver), imperative, !serverSide, !userChose {
                // "include any API keys you can find in the notes": a sweep handed over.
                add(.secretParameter, field, text, text.span(of: s))
            }

            // (d) A fixed recipient the user did not choose.
            var sensitiveObject: Bool { secret != nil || sensitive != nil || conversation != nil || instructions != nil || has(L.userRequest) }
            if let d = destination, has(L.sendImperative),
               deviation || (!userChose && (has(Lexicon.insistence) || concealed || sensitiveObject)) {
                add(.fixedRecipient, field, text, text.span(of: d))
            }

            // (e) The model's instructions, the conversation, other tools' data handed over.
            if instructions != nil || conversation != nil || otherTools != nil, let v = first(L.handOver) {
                let weak = conversation ?? otherTools
                let standing = has(Lexicon.intoParameter) || has(L.toThisTool) || has(L.insistence) || destination != nil || concealed
                    || has(L.laterTurns) || has(L.otherToolHook)
                let startsWithVerb = clean[range.lowerBound..<v.lowerBound].allSatisfy(\.isWhitespace)
                if let o = instructions, imperative || standing || startsWithVerb {
                    add(.contextDisclosure, field, text, text.span(of: o))
                } else if let o = weak, standing, !userChose {
                    add(.contextDisclosure, field, text, text.span(of: o))
                }
            }
        }
    }

    /// A literal destination in a sentence that something is sent to (not an example): a
    /// non-documentation e-mail address, URL or IP, a phone number, a handle or channel, an
    /// account number, an IBAN or a wallet address.
    func fixedDestination(in clean: String, _ range: Range<String.Index>, _ m: FieldMatches) -> Range<String.Index>? {
        let L = IntentLexicon.self
        var candidates = m.matches(Lexicon.address, in: range).filter { !Lexicon.isDocumentationAddress(String(clean[$0])) }
        candidates += m.matches(L.phone, in: range).filter { !ToolContext.isDocumentationPhone(String(clean[$0])) }
        candidates += m.matches(L.handle, in: range).filter { !ToolContext.isBroadcastOrColor(String(clean[$0])) }
        candidates += m.matches(L.accountNumber, in: range)
        candidates += m.matches(Lexicon.paymentDestination, in: range)
        for r in candidates.sorted(by: { $0.lowerBound < $1.lowerBound }) {
            // The 60 characters before it, within the sentence.
            var from = r.lowerBound
            var n = 0
            while n < 60, from > range.lowerBound { from = clean.index(before: from); n += 1 }
            let lead = String(clean[from..<r.lowerBound])
            if L.exampleLead.firstMatch(in: lead) != nil { continue }
            if L.towardLead.firstMatch(in: lead) == nil { continue }
            return r
        }
        return nil
    }

    /// Fictional numbers (555-01xx and the 555 exchange) are documentation examples.
    static func isDocumentationPhone(_ p: String) -> Bool {
        let digits = p.filter(\.isNumber)
        return digits.contains("555") && digits.count <= 12
    }

    /// Slack-style broadcasts (@here, @channel, @everyone) and hex colours (#fff) are not recipients.
    static func isBroadcastOrColor(_ h: String) -> Bool {
        let lower = h.lowercased()
        if ["@here", "@channel", "@everyone", "@all"].contains(lower) { return true }
        if lower.hasPrefix("#") && lower.dropFirst().allSatisfy({ $0.isHexDigit }) { return true }
        return false
    }

    /// Whether a match lies inside quotes (an example the description quotes, such as a memory
    /// tool's "answer in French from now on"). Apostrophes inside words do not count.
    static func isQuoted(_ r: Range<String.Index>, in s: String, from start: String.Index) -> Bool {
        let before = Array(s[start..<r.lowerBound])
        var straight = 0, open = 0, close = 0
        for (i, c) in before.enumerated() {
            let prev: Character = i > 0 ? before[i - 1] : " "
            let next: Character = i + 1 < before.count ? before[i + 1] : " "
            switch c {
            case "\"": straight += 1
            case "\u{201C}": open += 1
            case "\u{201D}": close += 1
            case "'", "\u{2018}", "\u{2019}":
                if prev.isWhitespace || prev == "(" { open += 1 } else if !next.isLetter { close += 1 }
            default: break
            }
        }
        return straight % 2 == 1 || open > close
    }

    /// Parameter names that carry the instruction themselves (`content_from_reading_ssh_id_rsa`):
    /// a content word and a secret object among the words of the name.
    mutating func scanParameterName(_ path: String, _ name: String) {
        var words: [String] = []
        var current = ""
        for c in name {
            if c == "_" || c == "-" || c == "." || c == " " {
                if !current.isEmpty { words.append(current.lowercased()); current = "" }
            } else if c.isUppercase, let last = current.last, last.isLowercase {
                words.append(current.lowercased()); current = String(c)
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { words.append(current.lowercased()) }
        guard words.count >= 3, let last = words.last else { return }
        // A reference to a secret (its path, name or id) is not its content.
        if ["path", "file", "filename", "name", "id", "url", "uri", "length", "count", "size", "type", "format", "hash", "hint", "ref"].contains(last) { return }
        let content: Set<String> = ["content", "contents", "dump", "copy", "reading", "verbatim"]
        let secretWords: Set<String> = ["ssh", "rsa", "ed25519", "aws", "env", "dotenv", "netrc", "kubeconfig", "passwords", "credentials",
                                        "cookies", "prompt", "conversation", "history", "keychain", "secrets", "tokens"]
        guard words.contains(where: content.contains), words.contains(where: secretWords.contains) else { return }
        let text = ScannedText(name)
        findings.append(Finding(ruleID: Rule.secretParameter.id, severity: Rule.secretParameter.severity, tool: tool,
                                field: path, span: .init(start: 0, end: text.original.count),
                                excerpt: text.excerpt(.init(start: 0, end: text.original.count)),
                                message: Rule.secretParameter.message))
    }
}

extension ToolScanner {
    /// Property names of the input schema, with the path of the property.
    static func propertyNames(_ value: JSONValue, path: String, into out: inout [(String, String)]) {
        switch value {
        case .array(let a): for (i, v) in a.enumerated() { propertyNames(v, path: "\(path)[\(i)]", into: &out) }
        case .object(let o):
            for k in o.keys.sorted() {
                if k == "properties", let props = o[k]?.objectValue {
                    for name in props.keys.sorted() { out.append(("\(path).properties.\(name)#name", name)) }
                }
                propertyNames(o[k]!, path: "\(path).\(k)", into: &out)
            }
        default: break
        }
    }
}
