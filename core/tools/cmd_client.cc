// fhir-bulk client: the SMART client registry (auth/client_store.h), plus keygen to make a
// key pair for a client (the private key as PEM for the client, the public JWK Set to
// register).

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "auth/access_token.h"
#include "auth/client_store.h"
#include "auth/jwk.h"
#include "db/pg.h"
#include "tools/command.h"
#include "util/base64url.h"
#include "util/errno_text.h"
#include "util/flags.h"

namespace fhirbulk {
namespace {

constexpr const char* kUsage =
    "usage: fhir-bulk client <add|list|disable|enable|remove|set-keys|keygen> [options]\n"
    "  add --name N (--jwks FILE | --jwks-url URL) [--scope S] [--group ID]...\n"
    "      registers a client and prints its client_id\n"
    "  add --operator --name N (--jwks FILE | --jwks-url URL) [--scope S]\n"
    "      an operator client (the operator console, [base]/_ops/api/): may be granted\n"
    "      operator/ scopes (default 'operator/*.read operator/clients.write'), which no\n"
    "      other client can hold; the console cannot disable it\n"
    "  list                      the registered clients\n"
    "  disable ID | enable ID    refuses (or allows again) its tokens, kick-offs and polls\n"
    "  remove ID                 forgets the client\n"
    "  set-keys ID --jwks FILE   replaces the JWK Set of a client registered by value "
    "(re-keying):\n"
    "      same client_id, scopes and groups; tokens are refused to the old keys at once\n"
    "  keygen --alg ES384|RS384 --private FILE --jwks-out FILE [--kid K]\n"
    "      makes a key pair: the private key (PEM, mode 0600) and the public JWK Set\n"
    "Database: --db CONNINFO, else $PG_CONNINFO.\n"
    "Options come first; \"--\" ends them, so an id that starts with '-' (older databases\n"
    "have some) is read as an id:  fhir-bulk client disable --db CONNINFO -- -Xy...\n";

int Fail(const std::string& msg, int code = kExitFailure) {
  std::fprintf(stderr, "fhir-bulk client: %s\n", msg.c_str());
  return code;
}

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": " + ErrnoText(errno));
  std::stringstream b;
  b << in.rdbuf();
  return b.str();
}

Result<std::unique_ptr<PgConnection>> Connect(const std::string& db) {
  return PgConnection::Connect(ResolveConninfo(db));
}

// Big-endian bytes of an OpenSSL BIGNUM parameter, left-padded to `width` when width > 0.
std::string BnParam(EVP_PKEY* key, const char* name, int width) {
  BIGNUM* bn = nullptr;
  if (EVP_PKEY_get_bn_param(key, name, &bn) != 1) return {};
  int len = width > 0 ? width : BN_num_bytes(bn);
  std::string out(static_cast<size_t>(len), '\0');
  BN_bn2binpad(bn, reinterpret_cast<unsigned char*>(out.data()), len);
  BN_free(bn);
  return out;
}

int Keygen(const std::string& alg, const std::string& private_path, const std::string& jwks_path,
           std::string kid) {
  if (alg != "ES384" && alg != "RS384") return Fail("--alg must be ES384 or RS384", kExitUsage);
  if (private_path.empty() || jwks_path.empty()) {
    return Fail("keygen needs --private and --jwks", kExitUsage);
  }
  EVP_PKEY* raw = alg == "ES384" ? EVP_EC_gen("P-384") : EVP_RSA_gen(3072);
  if (raw == nullptr) return Fail("key generation failed");
  std::unique_ptr<EVP_PKEY, EvpPkeyFree> key(raw);
  const bool ec = alg == "ES384";
  const std::string x = ec ? Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_X, 48)) : "";
  const std::string y = ec ? Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_EC_PUB_Y, 48)) : "";
  const std::string n = ec ? "" : Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_N, 0));
  const std::string e = ec ? "" : Base64UrlEncode(BnParam(key.get(), OSSL_PKEY_PARAM_RSA_E, 0));
  if (kid.empty()) {
    // RFC 7638 thumbprint: the kid a client derives from the same key on its own.
    std::string canonical =
        ec ? "{\"crv\":\"P-384\",\"kty\":\"EC\",\"x\":\"" + x + "\",\"y\":\"" + y + "\"}"
           : "{\"e\":\"" + e + "\",\"kty\":\"RSA\",\"n\":\"" + n + "\"}";
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(canonical.data()), canonical.size(), digest);
    kid = Base64UrlEncode(std::string_view(reinterpret_cast<char*>(digest), sizeof(digest)));
  }

  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("keys");
  w.StartArray();
  w.StartObject();
  w.Key("kid");
  w.String(kid);
  w.Key("alg");
  w.String(alg);
  w.Key("use");
  w.String("sig");
  if (ec) {
    w.Key("kty");
    w.String("EC");
    w.Key("crv");
    w.String("P-384");
    w.Key("x");
    w.String(x);
    w.Key("y");
    w.String(y);
  } else {
    w.Key("kty");
    w.String("RSA");
    w.Key("n");
    w.String(n);
    w.Key("e");
    w.String(e);
  }
  w.EndObject();
  w.EndArray();
  w.EndObject();

  mode_t old = ::umask(077);
  FILE* f = std::fopen(private_path.c_str(), "w");
  ::umask(old);
  if (f == nullptr) return Fail(private_path + ": " + ErrnoText(errno));
  bool ok = PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) return Fail("cannot write " + private_path);
  std::ofstream out(jwks_path, std::ios::binary | std::ios::trunc);
  out << std::string(buf.GetString(), buf.GetSize()) << "\n";
  if (!out) return Fail("cannot write " + jwks_path);
  std::printf("%s\n", kid.c_str());
  return kExitOk;
}

}  // namespace

int RunClient(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitUsage : kExitOk;
  }
  const std::string action = argv[1];
  std::string db, name, jwks_file, jwks_url, scope = "system/*.read", alg = "ES384", private_path,
                                             jwks_out, kid;
  std::vector<std::string> groups;
  bool allow_http = false, is_operator = false;
  FlagParser flags("fhir-bulk client " + action + " [options]", "See fhir-bulk client --help.");
  flags.AddString("db", &db, "PostgreSQL connection string", "CONNINFO");
  flags.AddString("name", &name, "add: a name for the client");
  flags.AddString("jwks", &jwks_file, "add, set-keys: file with the client's public JWK Set",
                  "FILE");
  flags.AddString("jwks-url", &jwks_url, "add: URL of the client's JWK Set", "URL");
  flags.AddBool("allow-http", &allow_http, "add: accept an http:// JWKS URL (tests only)");
  flags.AddBool("operator", &is_operator,
                "add: an operator client (operator/ scopes, the operator console)");
  std::string scope_flag;
  flags.AddString("scope", &scope_flag,
                  "add: scopes the client may be granted (space-separated; default "
                  "system/*.read, with --operator operator/*.read operator/clients.write)");
  flags.AddRepeated("group", &groups, "add: a Group the client may export (repeatable)", "ID");
  flags.AddString("alg", &alg, "keygen: ES384 (default) or RS384");
  flags.AddString("private", &private_path, "keygen: where to write the private key (PEM)");
  flags.AddString("kid", &kid, "keygen: key id (default: the RFC 7638 thumbprint)");
  flags.AddString("jwks-out", &jwks_out, "keygen: where to write the public JWK Set", "FILE");
  Status s = flags.Parse(argc - 1, argv + 1);
  if (flags.help_requested()) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (!s.ok()) return Fail(s.message(), kExitUsage);
  const auto& args = flags.positionals();
  if (!scope_flag.empty()) {
    scope = scope_flag;
  } else if (is_operator) {
    scope = "operator/*.read operator/clients.write";
  }

  // The command line is checked whole before the database is asked anything.
  const bool by_id =
      action == "disable" || action == "enable" || action == "remove" || action == "set-keys";
  if (!by_id && action != "add" && action != "list" && action != "keygen") {
    return Fail("unknown action '" + action + "'\n" + kUsage, kExitUsage);
  }
  if (by_id && args.size() != 1) return Fail(action + " takes one client_id", kExitUsage);
  if (action == "set-keys" && jwks_file.empty()) {
    return Fail("set-keys needs --jwks FILE (the new public JWK Set)", kExitUsage);
  }
  if (!by_id && !args.empty()) return Fail(action + " takes no arguments", kExitUsage);

  if (action == "keygen") {
    return Keygen(alg, private_path, jwks_out.empty() ? jwks_file : jwks_out, kid);
  }
  auto conn = Connect(db);
  if (!conn.ok()) return Fail(conn.status().message());
  PgConnection* c = conn->get();

  if (action == "add") {
    NewClient nc;
    nc.name = name;
    nc.jwks_url = jwks_url;
    nc.allowed_scopes = scope;
    nc.allowed_groups = groups;
    nc.allow_http = allow_http;
    nc.is_operator = is_operator;
    if (!jwks_file.empty()) {
      auto text = ReadFile(jwks_file);
      if (!text.ok()) return Fail(text.status().message());
      nc.jwks = *text;
    }
    auto id = AddClient(c, nc);
    if (!id.ok()) {
      return Fail(id.status().message(),
                  id.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitFailure);
    }
    std::printf("%s\n", id->c_str());
    return kExitOk;
  }
  if (action == "list") {
    auto clients = ListClients(c);
    if (!clients.ok()) return Fail(clients.status().message());
    std::printf("%-24s %-8s %-20s %-30s %s\n", "CLIENT_ID", "STATUS", "CREATED", "NAME",
                "SCOPES / KEYS");
    for (const ClientRecord& r : *clients) {
      std::string keys = r.jwks_url.empty() ? "jwks by value" : "jwks_url " + r.jwks_url;
      std::string groups_text;
      for (const auto& g : r.allowed_groups) groups_text += " Group/" + g;
      std::printf("%-24s %-8s %-20s %-30s %s; %s%s%s\n", r.client_id.c_str(),
                  r.enabled ? "enabled" : "disabled", r.created_at.c_str(), r.name.c_str(),
                  r.allowed_scopes.c_str(), keys.c_str(),
                  groups_text.empty() ? "" : ("; groups:" + groups_text).c_str(),
                  r.is_operator ? "; operator" : "");
    }
    return kExitOk;
  }
  if (action == "set-keys") {
    auto text = ReadFile(jwks_file);
    if (!text.ok()) return Fail(text.status().message());
    Status r = SetClientJwks(c, args[0], *text);
    if (!r.ok()) {
      return Fail(r.message(),
                  r.code() == Status::Code::kInvalidArgument ? kExitUsage : kExitFailure);
    }
    std::printf("%s keys replaced\n", args[0].c_str());
    return kExitOk;
  }
  // disable, enable, remove
  Status r = action == "remove" ? RemoveClient(c, args[0])
                                : SetClientEnabled(c, args[0], action == "enable");
  if (!r.ok()) return Fail(r.message());
  std::printf("%s %sd\n", args[0].c_str(), action == "remove" ? "remove" : action.c_str());
  return kExitOk;
}

}  // namespace fhirbulk
