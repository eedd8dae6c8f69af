use kube::CustomResourceExt;

fn main() {
    print!("{}", serde_saphyr::to_string(&curve_operator::api::CurveCluster::crd()).unwrap());
}
