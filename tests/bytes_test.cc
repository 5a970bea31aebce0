#include "ledger/bytes.h"

#include <catch2/catch.hpp>

using namespace ledger;

TEST_CASE("base64 round-trips RFC 4648 test vectors") {
  const char* plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
  const char* enc[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
  for (int i = 0; i < 7; i++) {
    CHECK(Base64Encode(plain[i]) == enc[i]);
    auto d = Base64Decode(enc[i]);
    REQUIRE(d.ok());
    CHECK(*d == plain[i]);
  }
}

TEST_CASE("base64 decoding is strict") {
  CHECK_FALSE(Base64Decode("Zg=").ok());       // length
  CHECK_FALSE(Base64Decode("Zh==").ok());      // non-zero pad bits
  CHECK_FALSE(Base64Decode("Zm9v\n").ok());    // whitespace
  CHECK_FALSE(Base64Decode("Zm-v").ok());      // url alphabet
  CHECK_FALSE(Base64Decode("Z===").ok());
  CHECK_FALSE(Base64Decode("=Zm9").ok());
}

TEST_CASE("base64url is unpadded and strict") {
  std::string raw("\xfb\xff\x01", 3);
  CHECK(Base64UrlEncode(raw) == "-_8B");
  CHECK(*Base64UrlDecode("-_8B") == raw);
  CHECK(Base64UrlEncode("f") == "Zg");
  CHECK(*Base64UrlDecode("Zg") == "f");
  CHECK_FALSE(Base64UrlDecode("Zg==").ok());
  CHECK_FALSE(Base64UrlDecode("Zh").ok());
  CHECK_FALSE(Base64UrlDecode("+/8B").ok());
  CHECK_FALSE(Base64UrlDecode("Z").ok());
}

TEST_CASE("hex and decimal parsing") {
  CHECK(HexEncode(std::string("\x00\xff", 2)) == "00ff");
  CHECK(*HexDecode("00FF") == std::string("\x00\xff", 2));
  CHECK_FALSE(HexDecode("0").ok());
  CHECK_FALSE(HexDecode("zz").ok());
  CHECK(*ParseUint64("0") == 0);
  CHECK(*ParseUint64("18446744073709551615") == UINT64_MAX);
  CHECK_FALSE(ParseUint64("18446744073709551616").ok());
  CHECK_FALSE(ParseUint64("01").ok());
  CHECK_FALSE(ParseUint64("-1").ok());
  CHECK_FALSE(ParseUint64("").ok());
  CHECK_FALSE(ParseUint64("1 ").ok());
}

TEST_CASE("SHA-256 known answers") {
  CHECK(HexEncode(HashView(Sha256(""))) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(HexEncode(HashView(Sha256("ab", "c"))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(Sha256Prefixed('a', "b", "c") == Sha256("abc"));
}

TEST_CASE("ByteReader never reads past the end") {
  const std::string input("\x01\x02\x03", 3);
  ByteReader r(input);
  uint16_t v16;
  REQUIRE(r.ReadU16(&v16));
  CHECK(v16 == 0x0102);
  uint64_t v64;
  CHECK_FALSE(r.ReadU64(&v64));
  CHECK(r.remaining() == 1);
  ByteView b;
  CHECK_FALSE(r.ReadBytes(2, &b));
  REQUIRE(r.ReadBytes(1, &b));
  CHECK(r.empty());
}
