#include "ledger/note.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "test_util.h"

using namespace ledger;

namespace {

// Known answers for the checkpoint key, computed by an independent
// implementation (tests/vectors/tlog.json, key "checkpoint").
struct CheckpointVector {
  std::string origin, seed, verifier_key, body, signed_note;
};

const CheckpointVector& Vec() {
  static const CheckpointVector v = [] {
    auto j = nlohmann::json::parse(ledger_test::ReadFileOrDie(ledger_test::VectorPath("tlog.json")))["checkpoint"];
    CheckpointVector c;
    c.origin = j["origin"].get<std::string>();
    c.seed = *HexDecode(j["ed25519_seed_hex"].get<std::string>());
    c.verifier_key = j["verifier_key"].get<std::string>();
    c.body = j["body"].get<std::string>();
    c.signed_note = j["signed_note"].get<std::string>();
    return c;
  }();
  return v;
}

NoteVerifier VecVerifier() {
  auto v = NoteVerifier::Parse(Vec().verifier_key);
  REQUIRE(v.ok());
  return *v;
}

std::unique_ptr<NoteSigner> MustGenerate(const std::string& name) {
  auto s = NoteSigner::Generate(name);
  REQUIRE(s.ok());
  return std::move(*s);
}

const std::string kDash = "\xE2\x80\x94";  // U+2014

// Example key and note from the documentation of Go's
// golang.org/x/mod/sumdb/note: a second, independent known answer.
const std::string kGoSkey = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const std::string kGoVkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const std::string kGoText =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n";
const std::string kGoSigLine =
    kDash + " PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const std::string kGoEnochLine =
    kDash + " EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

}  // namespace

// ------------------------------------------------------------ known answers

TEST_CASE("note: verifier key string from the vector seed is byte-exact") {
  auto s = NoteSigner::FromSeed(Vec().origin, Vec().seed);
  REQUIRE(s.ok());
  CHECK((*s)->verifier().VerifierKeyString() == Vec().verifier_key);
  CHECK((*s)->verifier().key_id() == 0x25820e75u);
  CHECK((*s)->name() == Vec().origin);
}

TEST_CASE("note: signed checkpoint from the vector seed is byte-exact") {
  auto s = NoteSigner::FromSeed(Vec().origin, Vec().seed);
  REQUIRE(s.ok());
  auto signed_note = (*s)->SignNote(Vec().body);
  REQUIRE(signed_note.ok());
  CHECK(*signed_note == Vec().signed_note);
  CHECK((*s)->SignatureLine(Vec().body) == Vec().signed_note.substr(Vec().body.size() + 1));
}

TEST_CASE("note: vector verifier key parses and round-trips") {
  NoteVerifier v = VecVerifier();
  CHECK(v.name() == Vec().origin);
  CHECK(v.key_id() == 0x25820e75u);
  CHECK(v.VerifierKeyString() == Vec().verifier_key);
  auto again = NoteVerifier::FromPublicKey(v.name(), v.public_key());
  REQUIRE(again.ok());
  CHECK(again->VerifierKeyString() == Vec().verifier_key);
}

TEST_CASE("note: vector signed note verifies and parses") {
  auto note = OpenNote(Vec().signed_note, {VecVerifier()});
  REQUIRE(note.ok());
  CHECK(note->text == Vec().body);
  REQUIRE(note->signatures.size() == 1);
  CHECK(note->signatures[0].name == Vec().origin);
  CHECK(note->signatures[0].key_id == 0x25820e75u);
  CHECK(note->signatures[0].signature.size() == 64);

  auto cp = OpenCheckpoint(Vec().signed_note, VecVerifier());
  REQUIRE(cp.ok());
  CHECK(cp->origin == Vec().origin);
  CHECK(cp->size == 1000);
  CHECK(Base64Encode(HashView(cp->root)) == "MlnyEqgbfTxivBM0LrpMo//q5CMhFCqlemFzwPsmID0=");
  CHECK(cp->extensions.empty());
  CHECK(cp->Format() == Vec().body);
}

TEST_CASE("note: changing any byte of the vector note is rejected") {
  const std::string& good = Vec().signed_note;
  const NoteVerifier v = VecVerifier();
  for (uint8_t mask : {0x01, 0x20, 0x80}) {
    for (size_t i = 0; i < good.size(); i++) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ mask);
      INFO("byte " << i << " xor " << int(mask));
      CHECK_FALSE(OpenNote(bad, {v}).ok());
      CHECK_FALSE(OpenCheckpoint(bad, v).ok());
    }
  }
  // Dropping or adding a byte is rejected too.
  for (size_t i = 0; i < good.size(); i++) {
    std::string bad = good;
    bad.erase(i, 1);
    INFO("erase byte " << i);
    CHECK_FALSE(OpenCheckpoint(bad, v).ok());
  }
}

TEST_CASE("note: Go sumdb/note documentation example") {
  auto v = NoteVerifier::Parse(kGoVkey);
  REQUIRE(v.ok());
  CHECK(v->key_id() == 0xc74f20a3u);
  auto s = NoteSigner::ParsePrivateKey(kGoSkey);
  REQUIRE(s.ok());
  CHECK((*s)->verifier().VerifierKeyString() == kGoVkey);
  CHECK((*s)->PrivateKeyString() == kGoSkey);
  auto msg = (*s)->SignNote(kGoText);
  REQUIRE(msg.ok());
  CHECK(*msg == kGoText + "\n" + kGoSigLine);

  // Doubly signed: EnochRoot is unknown here and must be ignored.
  auto n = OpenNote(kGoText + "\n" + kGoSigLine + kGoEnochLine, {*v});
  REQUIRE(n.ok());
  CHECK(n->text == kGoText);
  REQUIRE(n->signatures.size() == 1);
  CHECK(n->signatures[0].name == "PeterNeumann");
  auto parsed = ParseNote(kGoText + "\n" + kGoSigLine + kGoEnochLine);
  REQUIRE(parsed.ok());
  REQUIRE(parsed->signatures.size() == 2);
  CHECK(parsed->signatures[1].name == "EnochRoot");
}

// ----------------------------------------------------------------- parsing

TEST_CASE("note: malformed notes are rejected") {
  const std::string& body = Vec().body;
  const std::string& good = Vec().signed_note;
  const std::string line = good.substr(body.size() + 1);          // "— name b64\n"
  const std::string b64 = line.substr(kDash.size() + 1 + Vec().origin.size() + 1,
                                      line.size() - (kDash.size() + 1 + Vec().origin.size() + 1) - 1);
  const std::string& o = Vec().origin;
  std::string many;
  for (int i = 0; i < 101; i++) many += line;

  struct Case {
    const char* what;
    std::string msg;
  };
  const std::vector<Case> cases = {
      {"empty", ""},
      {"only a newline", "\n"},
      {"missing blank line", body + line},
      {"empty signature block", body + "\n"},
      {"signature block without final newline", good.substr(0, good.size() - 1)},
      {"ASCII hyphen instead of em dash", body + "\n- " + o + " " + b64 + "\n"},
      {"ASCII double hyphen", body + "\n-- " + o + " " + b64 + "\n"},
      {"en dash instead of em dash", body + "\n\xE2\x80\x93 " + o + " " + b64 + "\n"},
      {"em dash without space", body + "\n" + kDash + o + " " + b64 + "\n"},
      {"em dash with two spaces", body + "\n" + kDash + "  " + o + " " + b64 + "\n"},
      {"two spaces before base64", body + "\n" + kDash + " " + o + "  " + b64 + "\n"},
      {"trailing space", body + "\n" + kDash + " " + o + " " + b64 + " \n"},
      {"no base64", body + "\n" + kDash + " " + o + "\n"},
      {"empty base64", body + "\n" + kDash + " " + o + " \n"},
      {"name with plus", body + "\n" + kDash + " a+b " + b64 + "\n"},
      {"bad base64 character", body + "\n" + kDash + " " + o + " " + "!" + b64.substr(1) + "\n"},
      {"truncated base64", body + "\n" + kDash + " " + o + " " + b64.substr(0, b64.size() - 1) + "\n"},
      {"non-canonical base64", body + "\n" + kDash + " " + o + " " + b64.substr(0, b64.size() - 2) + "l=\n"},
      {"base64url", body + "\n" + kDash + " " + o + " " + "_-" + b64.substr(2) + "\n"},
      {"signature of 4 bytes", body + "\n" + kDash + " " + o + " AAAAAA==\n"},
      {"signature of 0 bytes", body + "\n" + kDash + " " + o + " =\n"},
      {"carriage return in text", "example.com/ledger/test\r\n1000\n\n" + line},
      {"CRLF line endings", "a\r\n\r\n" + line},
      {"carriage return in signature line", body + "\n" + line.substr(0, line.size() - 1) + "\r\n"},
      {"tab in text", "a\tb\n\n" + line},
      {"NUL in text", std::string("a\0b\n\n", 5) + line},
      {"DEL in text", "a\x7f" "b\n\n" + line},
      {"C1 control in text", "a\xC2\x85" "b\n\n" + line},
      {"invalid UTF-8", "a\xff" "b\n\n" + line},
      {"overlong UTF-8", "a\xC0\xAF" "b\n\n" + line},
      {"UTF-16 surrogate", "a\xED\xA0\x80" "b\n\n" + line},
      {"truncated em dash", body + "\n\xE2\x80 " + o + " " + b64 + "\n"},
      {"101 signatures", body + "\n" + many},
      {"trailing garbage", good + "x"},
      {"trailing garbage line", good + "garbage\n"},
      {"trailing blank line", good + "\n"},
  };
  REQUIRE(b64.substr(b64.size() - 2) == "k=");  // so "l=" above only changes the pad bits
  for (const auto& c : cases) {
    INFO(c.what);
    auto parsed = ParseNote(c.msg);
    CHECK_FALSE(parsed.ok());
    if (!parsed.ok()) CHECK(parsed.status().IsInvalidArgument());
    auto opened = OpenNote(c.msg, {VecVerifier()});
    CHECK_FALSE(opened.ok());
    if (!opened.ok()) CHECK(opened.status().IsInvalidArgument());
  }

  // A blank line between signature lines is well formed: the last blank line
  // ends the text, so the first "signature" becomes text and no longer verifies.
  auto split = ParseNote(body + "\n" + line + "\n" + line);
  REQUIRE(split.ok());
  CHECK(split->text == body + "\n" + line);
  CHECK(split->signatures.size() == 1);
  CHECK(OpenNote(body + "\n" + line + "\n" + line, {VecVerifier()}).status().code() ==
        Status::Code::kPermissionDenied);
}

TEST_CASE("note: parsing limits and blank lines inside the text") {
  const std::string line = Vec().signed_note.substr(Vec().body.size() + 1);
  std::string hundred;
  for (int i = 0; i < 100; i++) hundred += line;
  auto p = ParseNote(Vec().body + "\n" + hundred);
  REQUIRE(p.ok());
  CHECK(p->signatures.size() == 100);
  // Repeats of one key's signature count once in the opened note.
  auto o = OpenNote(Vec().body + "\n" + hundred, {VecVerifier()});
  REQUIRE(o.ok());
  CHECK(o->signatures.size() == 1);

  // The text may contain blank lines and end with one; the signatures start
  // after the last blank line.
  auto s = MustGenerate("example.com/blank");
  for (std::string text : {"a\n\nb\n", "a\n\n", "\n", "a\n\n\n"}) {
    INFO(text);
    auto msg = s->SignNote(text);
    REQUIRE(msg.ok());
    auto n = OpenNote(*msg, {s->verifier()});
    REQUIRE(n.ok());
    CHECK(n->text == text);
  }
  // UTF-8 beyond ASCII is fine in text and names.
  auto u = MustGenerate("example.com/caf\xC3\xA9");
  auto msg = u->SignNote("\xE2\x9C\x93 ok \xF0\x9F\x94\x91\n");
  REQUIRE(msg.ok());
  CHECK(OpenNote(*msg, {u->verifier()}).ok());
}

TEST_CASE("note: SignNote rejects invalid texts") {
  auto s = MustGenerate("example.com/sign");
  for (std::string text : {std::string(""), std::string("no newline"), std::string("a\rb\n"), std::string("a\tb\n"),
                           std::string("a\xff\n"), std::string("a\0b\n", 4)}) {
    INFO(text);
    auto r = s->SignNote(text);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().IsInvalidArgument());
  }
}

// ------------------------------------------------------------- verification

TEST_CASE("note: signatures from unknown keys are ignored") {
  auto log = MustGenerate("example.com/log");
  auto other = MustGenerate("example.com/witness");
  const std::string text = "hello\n";
  const std::string log_line = log->SignatureLine(text);
  const std::string other_line = other->SignatureLine(text);
  // Unknown name with junk signature bytes.
  const std::string junk_line = kDash + " example.com/junk " + Base64Encode(std::string(68, '\x07')) + "\n";
  // Known name, unknown key ID.
  const std::string id_line = kDash + " example.com/log " + Base64Encode(std::string(68, '\x01')) + "\n";

  for (const std::string& msg : {text + "\n" + other_line + log_line + junk_line + id_line,
                                 text + "\n" + junk_line + id_line + log_line}) {
    auto n = OpenNote(msg, {log->verifier()});
    REQUIRE(n.ok());
    CHECK(n->text == text);
    REQUIRE(n->signatures.size() == 1);
    CHECK(n->signatures[0].name == "example.com/log");
    CHECK(n->signatures[0].key_id == log->verifier().key_id());
  }

  // With both keys known, both signatures are returned, in note order.
  auto both = OpenNote(text + "\n" + other_line + log_line, {log->verifier(), other->verifier()});
  REQUIRE(both.ok());
  REQUIRE(both->signatures.size() == 2);
  CHECK(both->signatures[0].name == "example.com/witness");
  CHECK(both->signatures[1].name == "example.com/log");
}

TEST_CASE("note: required key missing is an error") {
  auto a = MustGenerate("example.com/a");
  auto b = MustGenerate("example.com/b");
  const std::string text = "text\n";
  auto signed_b = b->SignNote(text);
  REQUIRE(signed_b.ok());

  auto r = OpenNote(*signed_b, {a->verifier(), b->verifier()}, 0);
  CHECK(r.status().code() == Status::Code::kPermissionDenied);
  CHECK(OpenNote(*signed_b, {a->verifier(), b->verifier()}, 1).ok());
  // Only unknown signatures: still missing.
  CHECK(OpenNote(*signed_b, {a->verifier()}).status().code() == Status::Code::kPermissionDenied);
  // Index out of range / no keys at all.
  CHECK(OpenNote(*signed_b, {a->verifier(), b->verifier()}, 2).status().IsInvalidArgument());
  CHECK(OpenNote(*signed_b, {}).status().IsInvalidArgument());
}

TEST_CASE("note: wrong key with the same name is an error") {
  auto impostor = MustGenerate(Vec().origin);
  REQUIRE(impostor->verifier().key_id() != VecVerifier().key_id());
  auto msg = impostor->SignNote(Vec().body);
  REQUIRE(msg.ok());
  CHECK(OpenNote(*msg, {VecVerifier()}).status().code() == Status::Code::kPermissionDenied);
  CHECK(OpenCheckpoint(*msg, VecVerifier()).status().code() == Status::Code::kPermissionDenied);

  // An impostor claiming the real key ID: a known key whose signature fails
  // rejects the whole note, even next to a valid signature.
  Bytes raw;
  const uint32_t id = VecVerifier().key_id();
  for (int s = 24; s >= 0; s -= 8) raw.push_back(static_cast<char>((id >> s) & 0xff));
  raw += impostor->Sign(Vec().body);
  const std::string forged = kDash + " " + Vec().origin + " " + Base64Encode(raw) + "\n";
  for (const std::string& m : {Vec().body + "\n" + forged, Vec().signed_note + forged, Vec().body + "\n" + forged +
                                                                                          Vec().signed_note.substr(Vec().body.size() + 1)}) {
    auto r = OpenNote(m, {VecVerifier()});
    CHECK(r.status().code() == Status::Code::kPermissionDenied);
  }
}

TEST_CASE("note: a failing signature from a non-required known key is an error") {
  auto log = MustGenerate("example.com/log");
  auto witness = MustGenerate("example.com/witness");
  const std::string text = "t\n";
  std::string wline = witness->SignatureLine("other text\n");  // valid encoding, wrong message
  auto msg = log->SignNote(text);
  REQUIRE(msg.ok());
  auto r = OpenNote(*msg + wline, {log->verifier(), witness->verifier()}, 0);
  CHECK(r.status().code() == Status::Code::kPermissionDenied);
  // Unknown to this verifier: ignored.
  CHECK(OpenNote(*msg + wline, {log->verifier()}).ok());
}

// -------------------------------------------------------------------- keys

TEST_CASE("note: generated keys sign and verify") {
  auto s = MustGenerate("example.com/gen");
  auto t = MustGenerate("example.com/gen");
  CHECK(s->verifier().VerifierKeyString() != t->verifier().VerifierKeyString());
  Bytes sig = s->Sign("message");
  REQUIRE(sig.size() == 64);
  CHECK(s->verifier().Verify("message", sig));
  CHECK_FALSE(s->verifier().Verify("messagE", sig));
  CHECK_FALSE(t->verifier().Verify("message", sig));
  CHECK_FALSE(s->verifier().Verify("message", sig.substr(0, 63)));
  CHECK_FALSE(s->verifier().Verify("message", sig + "x"));
  Bytes bad = sig;
  bad[10] = static_cast<char>(bad[10] ^ 1);
  CHECK_FALSE(s->verifier().Verify("message", bad));
  // The verifier key string of a generated key parses back to the same key.
  auto v = NoteVerifier::Parse(s->verifier().VerifierKeyString());
  REQUIRE(v.ok());
  CHECK(v->Verify("message", sig));
  auto msg = s->SignNote("body\n");
  REQUIRE(msg.ok());
  CHECK(OpenNote(*msg, {*v}).ok());
}

TEST_CASE("note: private key string round trip") {
  auto s = MustGenerate("example.com/priv");
  const std::string skey = s->PrivateKeyString();
  CHECK(skey.rfind("PRIVATE+KEY+example.com/priv+", 0) == 0);
  auto p = NoteSigner::ParsePrivateKey(skey);
  REQUIRE(p.ok());
  CHECK((*p)->name() == "example.com/priv");
  CHECK((*p)->verifier().VerifierKeyString() == s->verifier().VerifierKeyString());
  CHECK((*p)->PrivateKeyString() == skey);
  CHECK((*p)->Sign("x") == s->Sign("x"));  // Ed25519 is deterministic

  // The vector key's private key string.
  auto v = NoteSigner::FromSeed(Vec().origin, Vec().seed);
  REQUIRE(v.ok());
  CHECK((*v)->PrivateKeyString() ==
        "PRIVATE+KEY+" + Vec().origin + "+25820e75+" + Base64Encode(std::string("\x01", 1) + Vec().seed));
}

TEST_CASE("note: malformed private keys are rejected") {
  const std::string seed64 = Base64Encode(std::string("\x01", 1) + Vec().seed);
  const std::string o = Vec().origin;
  const std::vector<std::string> bad = {
      "",
      "PRIVATE+KEY+",
      "PRIVATE+KEY+" + o + "+25820e76+" + seed64,              // hash mismatch
      "PRIVATE+KEY+" + o + "+25820E75+" + seed64,              // uppercase hash
      "PRIVATE+KEY+" + o + "+25820e7+" + seed64,               // short hash
      "PRIVATE+KEY+other+25820e75+" + seed64,                  // hash is per name
      "private+key+" + o + "+25820e75+" + seed64,
      "PRIVATE+" + o + "+25820e75+" + seed64,
      o + "+25820e75+" + seed64,
      "PRIVATE+KEY+" + o + "+25820e75+" + Base64Encode(std::string("\x02", 1) + Vec().seed),  // algorithm
      "PRIVATE+KEY+" + o + "+25820e75+" + Base64Encode(std::string("\x01", 1) + Vec().seed.substr(1)),
      "PRIVATE+KEY+" + o + "+25820e75+" + Base64Encode(std::string("\x01", 1) + Vec().seed + "x"),
      "PRIVATE+KEY+" + o + "+25820e75+" + seed64 + "\n",
      "PRIVATE+KEY+" + o + "+25820e75+",
  };
  for (const auto& k : bad) {
    INFO(k);
    auto r = NoteSigner::ParsePrivateKey(k);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().IsInvalidArgument());
  }
  CHECK(NoteSigner::ParsePrivateKey("PRIVATE+KEY+" + o + "+25820e75+" + seed64).ok());
}

TEST_CASE("note: malformed verifier keys are rejected") {
  const std::string& good = Vec().verifier_key;  // "<origin>+25820e75+<b64>"
  const std::string o = Vec().origin;
  const std::string key64 = good.substr(o.size() + 10);
  auto pub = Base64Decode(key64);
  REQUIRE(pub.ok());
  std::string alg2 = *pub;
  alg2[0] = 0x02;
  const std::vector<std::string> bad = {
      "",
      o,
      o + "+25820e75",
      o + "+25820e75+",
      o + "+25820e76+" + key64,                     // hash mismatch
      o + "+25820E75+" + key64,                     // uppercase hash
      o + "+025820e75+" + key64,
      "other+25820e75+" + key64,                    // hash covers the name
      "+25820e75+" + key64,                         // empty name
      "a b+25820e75+" + key64,                      // space in name
      "a\xC2\xA0" "b+25820e75+" + key64,            // no-break space in name
      o + "+25820e75+" + Base64Encode(alg2),        // unknown algorithm
      o + "+25820e75+" + Base64Encode(pub->substr(0, 32)),
      o + "+25820e75+" + Base64Encode(*pub + "x"),
      o + "+25820e75+" + key64 + "=",
      o + "+25820e75+" + key64.substr(0, key64.size() - 1),
  };
  for (const auto& k : bad) {
    INFO(k);
    auto r = NoteVerifier::Parse(k);
    CHECK_FALSE(r.ok());
    if (!r.ok()) CHECK(r.status().IsInvalidArgument());
  }
  CHECK(NoteVerifier::Parse(good).ok());
  CHECK_FALSE(NoteVerifier::FromPublicKey(o, pub->substr(1, 31)).ok());
}

TEST_CASE("note: key names are validated") {
  for (std::string name : {std::string(""), std::string("a+b"), std::string("a b"), std::string("a\tb"),
                           std::string("a\nb"), std::string("a\rb"), std::string("a\x7f"), std::string("a\0b", 3),
                           std::string("a\xC2\xA0" "b"), std::string("a\xE2\x80\x83" "b"), std::string("a\xE3\x80\x80"),
                           std::string("a\xC2\x85"), std::string("a\xff"), std::string("\xC0\xAF")}) {
    INFO(name);
    CHECK_FALSE(NoteSigner::Generate(name).ok());
    CHECK_FALSE(NoteSigner::FromSeed(name, Vec().seed).ok());
    CHECK_FALSE(NoteVerifier::FromPublicKey(name, VecVerifier().public_key()).ok());
  }
  CHECK(NoteSigner::Generate("example.com/log/v1").ok());
  CHECK(NoteSigner::Generate("\xE2\x80\x94").ok());  // odd but legal
  CHECK_FALSE(NoteSigner::FromSeed("ok", Vec().seed.substr(1)).ok());
  CHECK_FALSE(NoteSigner::FromSeed("ok", Vec().seed + "x").ok());
}

// ------------------------------------------------------------- checkpoints

TEST_CASE("note: checkpoint parsing") {
  const std::string root = "MlnyEqgbfTxivBM0LrpMo//q5CMhFCqlemFzwPsmID0=";
  const std::string root31 = Base64Encode(std::string(31, 'r'));
  const std::string root33 = Base64Encode(std::string(33, 'r'));

  SECTION("valid bodies") {
    auto cp = ParseCheckpoint(Vec().body);
    REQUIRE(cp.ok());
    CHECK(cp->origin == Vec().origin);
    CHECK(cp->size == 1000);
    CHECK(Base64Encode(HashView(cp->root)) == root);
    CHECK(cp->Format() == Vec().body);

    auto zero = ParseCheckpoint("o\n0\n" + root + "\n");
    REQUIRE(zero.ok());
    CHECK(zero->size == 0);
    auto max = ParseCheckpoint("o\n18446744073709551615\n" + root + "\n");
    REQUIRE(max.ok());
    CHECK(max->size == UINT64_MAX);
  }

  SECTION("extension lines are preserved") {
    const std::string text = Vec().body + "ext one\nsecond \xE2\x80\x94 line\n";
    auto cp = ParseCheckpoint(text);
    REQUIRE(cp.ok());
    REQUIRE(cp->extensions.size() == 2);
    CHECK(cp->extensions[0] == "ext one");
    CHECK(cp->extensions[1] == "second \xE2\x80\x94 line");
    CHECK(cp->Format() == text);
  }

  SECTION("malformed bodies") {
    struct Case {
      const char* what;
      std::string text;
    };
    const std::vector<Case> cases = {
        {"empty", ""},
        {"leading-zero size", "o\n01000\n" + root + "\n"},
        {"zero with leading zero", "o\n00\n" + root + "\n"},
        {"negative size", "o\n-1\n" + root + "\n"},
        {"plus sign size", "o\n+1\n" + root + "\n"},
        {"size with space", "o\n1000 \n" + root + "\n"},
        {"empty size", "o\n\n" + root + "\n"},
        {"hex size", "o\n0x10\n" + root + "\n"},
        {"overflowing size", "o\n18446744073709551616\n" + root + "\n"},
        {"missing root", "o\n1000\n"},
        {"empty root", "o\n1000\n\n"},
        {"31-byte root", "o\n1000\n" + root31 + "\n"},
        {"33-byte root", "o\n1000\n" + root33 + "\n"},
        {"unpadded root", "o\n1000\n" + root.substr(0, root.size() - 1) + "\n"},
        {"hex root", "o\n1000\n" + HexEncode(std::string(32, 'r')) + "\n"},
        {"empty origin", "\n1000\n" + root + "\n"},
        {"no final newline", "o\n1000\n" + root},
        {"empty extension line", "o\n1000\n" + root + "\n\n"},
        {"empty extension line after one", "o\n1000\n" + root + "\next\n\n"},
        {"empty extension line before one", "o\n1000\n" + root + "\n\next\n"},
        {"carriage return", "o\r\n1000\n" + root + "\n"},
        {"control character in extension", "o\n1000\n" + root + "\ne\txt\n"},
    };
    for (const auto& c : cases) {
      INFO(c.what);
      auto r = ParseCheckpoint(c.text);
      CHECK_FALSE(r.ok());
      if (!r.ok()) CHECK(r.status().IsInvalidArgument());
    }
  }
}

TEST_CASE("note: OpenCheckpoint requires the origin to match the log key") {
  auto s = NoteSigner::FromSeed(Vec().origin, Vec().seed);
  REQUIRE(s.ok());
  const std::string root = "MlnyEqgbfTxivBM0LrpMo//q5CMhFCqlemFzwPsmID0=";

  auto other_origin = (*s)->SignNote("example.com/other\n1000\n" + root + "\n");
  REQUIRE(other_origin.ok());
  CHECK(OpenNote(*other_origin, {VecVerifier()}).ok());  // the signature itself is fine
  CHECK(OpenCheckpoint(*other_origin, VecVerifier()).status().code() == Status::Code::kPermissionDenied);

  auto bad_body = (*s)->SignNote(Vec().origin + "\n01000\n" + root + "\n");
  REQUIRE(bad_body.ok());
  CHECK(OpenCheckpoint(*bad_body, VecVerifier()).status().IsInvalidArgument());

  Checkpoint cp;
  cp.origin = Vec().origin;
  cp.size = 7;
  cp.root = Sha256("root");
  cp.extensions = {"ext"};
  auto msg = (*s)->SignNote(cp.Format());
  REQUIRE(msg.ok());
  auto back = OpenCheckpoint(*msg, VecVerifier());
  REQUIRE(back.ok());
  CHECK(back->origin == cp.origin);
  CHECK(back->size == 7);
  CHECK(back->root == cp.root);
  CHECK(back->extensions == cp.extensions);

  // A witness cosignature line from an unknown key does not disturb it.
  auto w = MustGenerate("example.com/witness");
  CHECK(OpenCheckpoint(*msg + w->SignatureLine(cp.Format()), VecVerifier()).ok());
}
