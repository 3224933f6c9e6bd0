/// A self-signed IdP certificate valid until 2126 (generated with openssl for the tests).
public let testIdPCertificatePEM = """
-----BEGIN CERTIFICATE-----
MIIDGTCCAgGgAwIBAgIUbUAkA/sqvWh7usOkh3JlMV4QQnMwDQYJKoZIhvcNAQEL
BQAwGzEZMBcGA1UEAwwQaWRwLmV4YW1wbGUudGVzdDAgFw0yNjExMjkwMDU5Mzla
GA8yMTI2MTEwNTAwNTkzOVowGzEZMBcGA1UEAwwQaWRwLmV4YW1wbGUudGVzdDCC
ASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEBAO9lTdKOer22cbNY+Lp2A7g7
Gd6VgHenSR9NAnqkkHa4SH3DIGMoEQqE5uKYPArW4MQi4LvXd10mh7ZNkhlYjtdC
F/XhDbD4EiV3jT9F+QojfHivPSB7n85imnElKXhD0rPxrfWSiJWOnpR/65MQGWlS
zUoCRF/TNcqbku1GDbFcz2NnDzVN2/G/FdeWOGjbzMGAHMUU/u0NIMfdK52Biwac
nIlGxkfjtk0RcqmP2Lu8sZdFJNBiDqbehsaGocxdHoJ8FeSCsp5AOddjQfoBsMMR
vmu6Qmdq7vuL20UdyAoQCVbTfDCaQ15HOBS0+xVg/fHFFKpRacuHsnNF2VjdKlsC
AwEAAaNTMFEwHQYDVR0OBBYEFK7vuHeEOs1uCEUuanD9DPB4ZbgRMB8GA1UdIwQY
MBaAFK7vuHeEOs1uCEUuanD9DPB4ZbgRMA8GA1UdEwEB/wQFMAMBAf8wDQYJKoZI
hvcNAQELBQADggEBAIPbEt+E6EGRwN+Uy6Emc6DaCiI4YePD7AYzxl49z3jfJjwy
+j6/YsC8ZvqbkrTaOVG+TeunkqrWxcNjXLPFa4rV4Slle7soCarMktOHqeCEDPfX
PwIXybTAP/DYRCMGfsEh03khtseZkhW58Wm5VKPUJMS9Dg7SNFyQvbD+BzlsthRf
OOSLMMZyjRuGVesPCytnEKHhlgP2TWQ3iWufOwJoHdy6jm0t6Fv9VAJLXMHBJpsY
h49Rj2uRmWfyLx0GNWSBc+UjteajuAj4yROFUqZdE0+viyZFwmapMonsZgvQUlqr
R07FeKoge5a1Uzra2Y58TFn5PMvuspo1K+W+x14=
-----END CERTIFICATE-----
"""

import JSON

/// Lets JSON literals be test arguments.
public struct JSONValueWrapper: ExpressibleByDictionaryLiteral, Sendable, CustomStringConvertible {
  public let value: JSONValue
  public init(dictionaryLiteral elements: (String, JSONValue)...) {
    var o: [String: JSONValue] = [:]
    for (k, v) in elements { o[k] = v }
    value = .object(o)
  }
  public var description: String { value.description }
}
