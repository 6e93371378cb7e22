package prismnet

import "time"

// Statuses. VPCs and subnets are active once stored; a port is DOWN until
// the data plane binds it to a host (a later part of PrismNET).
const (
	StatusActive = "active"
	PortDown     = "DOWN"
)

// Security group rule directions and protocols.
const (
	Ingress  = "ingress"
	Egress   = "egress"
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
	ICMP     = "icmp"
	ProtoAny = "any"
)

// VPC is one tenant's isolated network: an IPv4 range its subnets share.
type VPC struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OrgID       string    `json:"org_id"`
	ProjectID   string    `json:"project_id"`
	CIDRBlock   string    `json:"cidr_block"`
	Description string    `json:"description,omitempty"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

// Subnet is a range of a VPC that ports take addresses from.
type Subnet struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	VPCID       string    `json:"vpc_id"`
	OrgID       string    `json:"org_id"`
	ProjectID   string    `json:"project_id"`
	CIDRBlock   string    `json:"cidr_block"`
	GatewayIP   string    `json:"gateway_ip"`
	Description string    `json:"description,omitempty"`
	DNSServers  []string  `json:"dns_servers"`
	DHCPEnabled bool      `json:"dhcp_enabled"`
	Status      string    `json:"status"`
	CreatedAt   time.Time `json:"created_at"`
}

// Port is an attachment point in a subnet: one IP address and one MAC,
// filtered by its security groups.
type Port struct {
	ID               string    `json:"id"`
	Name             string    `json:"name,omitempty"`
	SubnetID         string    `json:"subnet_id"`
	VPCID            string    `json:"vpc_id"`
	OrgID            string    `json:"org_id"`
	ProjectID        string    `json:"project_id"`
	IP               string    `json:"ip"`
	MACAddress       string    `json:"mac_address"`
	SecurityGroupIDs []string  `json:"security_group_ids"`
	DeviceID         string    `json:"device_id,omitempty"`
	DeviceOwner      string    `json:"device_owner,omitempty"`
	Status           string    `json:"status"`
	CreatedAt        time.Time `json:"created_at"`
}

// SecurityGroup is a project's set of stateful firewall rules; traffic a
// rule does not allow is dropped.
type SecurityGroup struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	OrgID       string    `json:"org_id"`
	ProjectID   string    `json:"project_id"`
	Description string    `json:"description,omitempty"`
	IsDefault   bool      `json:"is_default"`
	Rules       []Rule    `json:"rules"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// Rule allows traffic in one direction: a protocol, for tcp and udp a port
// range, from or to a CIDR or the members of a group.
type Rule struct {
	ID            string `json:"id"`
	Direction     string `json:"direction"`
	Protocol      string `json:"protocol"`
	PortRangeMin  *int   `json:"port_range_min,omitempty"`
	PortRangeMax  *int   `json:"port_range_max,omitempty"`
	RemoteCIDR    string `json:"remote_cidr,omitempty"`
	RemoteGroupID string `json:"remote_group_id,omitempty"`
	Description   string `json:"description,omitempty"`
}

// CreateVPCRequest is the body of POST /api/v1/vpcs.
type CreateVPCRequest struct {
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	ProjectID   string `json:"project_id"`
	CIDRBlock   string `json:"cidr_block"`
	Description string `json:"description"`
}

// CreateSubnetRequest is the body of POST /api/v1/subnets.
type CreateSubnetRequest struct {
	Name        string   `json:"name"`
	VPCID       string   `json:"vpc_id"`
	CIDRBlock   string   `json:"cidr_block"`
	GatewayIP   string   `json:"gateway_ip"`
	Description string   `json:"description"`
	DNSServers  []string `json:"dns_servers"`
	DHCPEnabled *bool    `json:"dhcp_enabled"`
}

// CreatePortRequest is the body of POST /api/v1/ports.
type CreatePortRequest struct {
	Name             string   `json:"name"`
	SubnetID         string   `json:"subnet_id"`
	IP               string   `json:"ip"`
	SecurityGroupIDs []string `json:"security_group_ids"`
	DeviceID         string   `json:"device_id"`
	DeviceOwner      string   `json:"device_owner"`
}

// CreateSecurityGroupRequest is the body of POST /api/v1/security-groups.
type CreateSecurityGroupRequest struct {
	Name        string `json:"name"`
	OrgID       string `json:"org_id"`
	ProjectID   string `json:"project_id"`
	Description string `json:"description"`
}

// CreateRuleRequest is the body of POST /api/v1/security-groups/{id}/rules.
type CreateRuleRequest struct {
	Direction     string `json:"direction"`
	Protocol      string `json:"protocol"`
	PortRangeMin  *int   `json:"port_range_min"`
	PortRangeMax  *int   `json:"port_range_max"`
	RemoteCIDR    string `json:"remote_cidr"`
	RemoteGroupID string `json:"remote_group_id"`
	Description   string `json:"description"`
}

// VPCList is a page of VPCs.
type VPCList struct {
	VPCs          []VPC  `json:"vpcs"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SubnetList is a page of subnets.
type SubnetList struct {
	Subnets       []Subnet `json:"subnets"`
	NextPageToken string   `json:"next_page_token,omitempty"`
}

// PortList is a page of ports.
type PortList struct {
	Ports         []Port `json:"ports"`
	NextPageToken string `json:"next_page_token,omitempty"`
}

// SecurityGroupList is a page of security groups.
type SecurityGroupList struct {
	SecurityGroups []SecurityGroup `json:"security_groups"`
	NextPageToken  string          `json:"next_page_token,omitempty"`
}

// Deleted is the answer to a DELETE.
type Deleted struct {
	ID      string `json:"id"`
	Deleted bool   `json:"deleted"`
}

func (v VPC) owner() (string, string, string)           { return v.OrgID, v.ProjectID, v.ID }
func (s Subnet) owner() (string, string, string)        { return s.OrgID, s.ProjectID, s.ID }
func (p Port) owner() (string, string, string)          { return p.OrgID, p.ProjectID, p.ID }
func (g SecurityGroup) owner() (string, string, string) { return g.OrgID, g.ProjectID, g.ID }
