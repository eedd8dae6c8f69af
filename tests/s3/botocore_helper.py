"""botocore's side of tests/s3_upload.rs.

  sign:  reads requests (JSON lines: method, url, headers, amz_date, region, access_key,
         secret_key) on stdin and prints botocore's S3 SigV4 Authorization header of each,
         signed at the given time (the cross-check of src/s3/sigv4.rs).
  setup ENDPOINT: on a moto server that checks signatures after its first actions
         (INITIAL_NO_AUTH_ACTION_COUNT=4), creates the bucket `backups` and a user allowed S3,
         and prints its access key and secret key.
"""
import json
import sys
import warnings

warnings.filterwarnings("ignore", message="Unverified HTTPS request")

import botocore.session
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def sign():
    for line in sys.stdin:
        r = json.loads(line)
        request = AWSRequest(method=r["method"], url=r["url"], headers=r["headers"])
        auth = S3SigV4Auth(Credentials(r["access_key"], r["secret_key"]), "s3", r["region"])
        # add_auth would stamp the current time: sign at the request's own.
        request.context["timestamp"] = r["amz_date"]
        canonical = auth.canonical_request(request)
        string_to_sign = auth.string_to_sign(request, canonical)
        signature = auth.signature(string_to_sign, request)
        scope = auth.scope(request)
        signed = auth.signed_headers(auth.headers_to_sign(request))
        print(f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders={signed}, Signature={signature}")


def setup(endpoint):
    session = botocore.session.get_session()
    # Any key while moto does not check yet.
    # An https endpoint is a test server's: the upload under test is what checks its certificate.
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", verify=False,
              aws_access_key_id="AKIASETUPSETUPSETUP1", aws_secret_access_key="setup")
    session.create_client("s3", **kw).create_bucket(Bucket="backups")
    iam = session.create_client("iam", **kw)
    iam.create_user(UserName="curve-backup")
    iam.put_user_policy(UserName="curve-backup", PolicyName="s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17",
         "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    key = iam.create_access_key(UserName="curve-backup")["AccessKey"]
    print(key["AccessKeyId"], key["SecretAccessKey"])


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign()
    else:
        setup(sys.argv[2])
